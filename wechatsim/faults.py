"""Active fault rules of the simulator and the per-call plan they produce.

Not thread-safe on its own: `SimState` calls it under its lock.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from wechatsim.config import TERMINAL_KINDS, FaultRule


@dataclass
class Plan:
    """What the faults decided for one call: extra latency, token revocation, a fault."""

    latency_s: float = 0.0
    invalidate_token: bool = False
    fault: FaultRule | None = None


@dataclass
class _Active:
    rule: FaultRule
    remaining: int | None
    until: float | None


class FaultBoard:
    """The installed rules, their remaining counts and how often each kind fired."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._active: list[_Active] = []
        self.fired: Counter[str] = Counter()

    def install(self, rules: Iterable[FaultRule], now: float, *, replace: bool) -> None:
        """Add rules (or replace all rules); durations start counting now."""
        if replace:
            self._active = []
        for rule in rules:
            until = now + rule.duration_s if rule.duration_s is not None else None
            self._active.append(_Active(rule, rule.count, until))

    def describe(self, now: float) -> list[dict]:
        """The rules still active, as JSON, with what is left of each."""
        self._expire(now)
        out = []
        for active in self._active:
            item = active.rule.to_dict()
            item["remaining"] = active.remaining
            item["active_for_s"] = None if active.until is None else round(active.until - now, 3)
            out.append(item)
        return out

    def plan(self, api: str, touser: str | None, now: float) -> Plan:
        """Roll the dice for one call: passive rules add up, the first terminal rule wins."""
        self._expire(now)
        plan = Plan()
        for active in self._active:
            rule = active.rule
            if not self._matches(rule, api, touser):
                continue
            if rule.kind in TERMINAL_KINDS and plan.fault is not None:
                continue
            if rule.fraction < 1.0 and self._rng.random() >= rule.fraction:
                continue
            if active.remaining is not None:
                active.remaining -= 1
            self.fired[rule.kind] += 1
            if rule.kind == "latency":
                plan.latency_s += rule.latency_ms / 1000.0
            elif rule.kind == "invalidate_token":
                plan.invalidate_token = True
            else:
                plan.fault = rule
        self._active = [a for a in self._active if a.remaining is None or a.remaining > 0]
        return plan

    @staticmethod
    def _matches(rule: FaultRule, api: str, touser: str | None) -> bool:
        if not fnmatchcase(api, rule.api):
            return False
        return rule.openids is None or (touser is not None and touser in rule.openids)

    def _expire(self, now: float) -> None:
        self._active = [a for a in self._active if a.until is None or a.until > now]
