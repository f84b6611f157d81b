"""Configuration of the WeChat API simulator: `SimConfig` and injectable `FaultRule`s."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Kinds that end the request (the first matching one fires) ...
TERMINAL_KINDS = frozenset({"errcode", "hang", "garbage", "http500", "drop"})
# ... and kinds that only add something and let the request go on.
PASSIVE_KINDS = frozenset({"latency", "invalidate_token"})
FAULT_KINDS = TERMINAL_KINDS | PASSIVE_KINDS


@dataclass(frozen=True)
class FaultRule:
    """One injected fault, matched by API (fnmatch pattern) and optionally by openid.

    kind: errcode (answer `errcode`/`errmsg`), latency (add `latency_ms`), hang (sleep
    `hang_s`, past client timeouts), garbage (200 with a non-JSON body), http500, drop
    (close the connection without an answer), invalidate_token (revoke the current token
    before the call is checked). `fraction` of matching calls fire; `count` caps the number
    of firings, `duration_s` the time the rule stays active (a rate-limit burst is an
    errcode rule 45009/45011 with a duration). With `after_accept` the message is accepted
    and recorded first and the fault hits the answer: it went out, but the caller can't know.
    """

    kind: str
    api: str = "*"
    errcode: int = -1
    errmsg: str = "system error"
    fraction: float = 1.0
    openids: frozenset[str] | None = None
    count: int | None = None
    duration_s: float | None = None
    latency_ms: float = 0.0
    hang_s: float = 30.0
    after_accept: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be within 0..1")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be >= 1")
        if self.openids is not None and not isinstance(self.openids, frozenset):
            object.__setattr__(self, "openids", frozenset(self.openids))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from JSON; unknown keys are an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (openids as a sorted list)."""
        out = asdict(self)
        out["openids"] = sorted(self.openids) if self.openids is not None else None
        return out


def _frozen(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@dataclass
class SimConfig:
    """Start-up settings of the simulator; faults and recipient lists change at run time too.

    followers: None means everybody follows; a set makes other openids get 43004 on
    custom/template sends. refused: openids (or "openid:template_id") whose subscription
    consent is gone (43101 on bizsend and template/subscribe). cs_window enforces the
    customer-service window (45015/45047) against interactions posted to
    /_sim/interactions. minute_quotas / daily_quotas map an API name (e.g.
    "message/custom/send") to a call limit answered with 45011 / 45009.
    dedupe_pattern: a regex whose first group is the dedupe key (e.g. the campaign tag)
    searched in each accepted payload; payloads without it are keyed by their hash.
    """

    app_id: str = "wxsim00000000000a"
    app_secret: str = "simulator-app-secret"
    latency_ms: float = 0.0
    token_ttl: int = 7200
    token_grace_s: float = 300.0
    force_refresh_daily: int = 20
    force_refresh_interval_s: float = 30.0
    faults: list[FaultRule] = field(default_factory=list)
    followers: frozenset[str] | None = None
    refused: frozenset[str] = frozenset()
    cs_window: bool = False
    minute_quotas: dict[str, int] = field(default_factory=dict)
    daily_quotas: dict[str, int] = field(default_factory=dict)
    openid_pattern: str = r"^o[A-Za-z0-9_-]{5,63}$"
    dedupe_pattern: str = r"\b(?:campaign|cid)[=:]([A-Za-z0-9_-]+)"
    seed: int | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.followers = _frozen(self.followers)
        self.refused = frozenset(self.refused)
        self.faults = [
            f if isinstance(f, FaultRule) else FaultRule.from_dict(f) for f in self.faults
        ]
        if self.token_ttl <= 0:
            raise ValueError("token_ttl must be positive")
