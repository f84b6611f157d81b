"""The staff web console and JSON API (issue 9): a separate Flask app on an internal port.

It is an adapter, like the CLI: views and API endpoints call the same service functions
(push/actions.py, editorial/actions.py, ...) and never run SQL themselves.
"""

from console.app import create_console_app

__all__ = ["create_console_app"]
