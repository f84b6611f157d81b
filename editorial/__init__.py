"""Editorial workflow for content records (issue 9): draft -> review -> publish, versions,
diffs, and the rule by which console edits and content-pack imports coexist.

Workflow (RecordRevision.state): an editor writes a `draft` (a new record, or an edit of a
live one, started from the live version's digest) -> submits it (`in_review`, only if it
passes the pack import's own validation) -> a reviewer who neither wrote nor edited it
approves (`published`: the Record is written by bot.content.pack.write_record, the same path
as a pack import, and the content revision is bumped so citizens' answers change within
[bot] content_check_seconds) or rejects it with a reason (`rejected`; editing it makes it a
`draft` again). The author (or an admin) may pull an open draft back (`withdrawn`). When a
newer version goes live, the previous published one becomes `superseded`. A draft whose
record changed after it was started (its base_digest is not the live digest) is stale: it
cannot be published until an editor re-bases it, having seen the diff.

Coexistence with pack imports — "a console edit wins":
- Re-importing a pack does not overwrite a record whose live version was published from
  the console after its last import. The import report lists each such record as
  "kept console edit" (use `qzbot content import --pack-wins`, or the import page's checkbox,
  to take the pack version). `--prune` never deletes such a record.
- Every pack import records a RecordRevision (source "pack") for each record it creates or
  changes, so a record's history shows imports and console edits side by side, and the
  record page shows where its live version came from: 内容包导入, or 控制台编辑 by X at T.

Modules: revisions.py (states, the schema-generated form, validation, diffs, pairing),
actions.py (the service layer the console pages and the JSON API call).
"""
