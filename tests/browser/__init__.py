"""Browser tests (Playwright on Debian chromium); see conftest.py."""
