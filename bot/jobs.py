"""The job runtime and the queue names: what every RQ job of either queue starts from.

A job runs with the process's runtime: the worker sets it (`use_runtime`); otherwise one is
built from the settings file/env on first use. `job_runtime()` applies the fork rule
(bot.runtime.Runtime.after_fork) before a job touches the database or an API client.
The jobs themselves live with their feature: push.jobs (campaigns) and push.followups
(customer-service texts that follow a passive reply); the worker is bot/worker.py.
"""

from __future__ import annotations

from bot.runtime import Runtime, build_runtime
from bot.settings import load_settings

REPLIES_QUEUE = "qzbot-replies"
_runtime: Runtime | None = None


def use_runtime(runtime: Runtime | None) -> None:
    """Set the runtime jobs in this process use (worker start-up, tests)."""
    global _runtime
    _runtime = runtime


def current_runtime() -> Runtime:
    """The process's runtime, built from settings on first use."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(load_settings())
    return _runtime


def job_runtime() -> Runtime:
    """The runtime for a job about to run: the process's, safe to use after a fork."""
    rt = current_runtime()
    rt.after_fork()
    return rt
