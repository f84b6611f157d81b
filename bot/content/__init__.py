"""Content packs (../shared/docs/content-pack.md): validation, import, export."""
