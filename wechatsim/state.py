"""The simulator's state behind one lock: tokens, quotas, recipients, accepted messages."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from wechatsim.account import Account
from wechatsim.config import FaultRule, SimConfig
from wechatsim.faults import FaultBoard, Plan
from wechatsim.rules import (
    CONSENT_APIS,
    FOLLOWER_APIS,
    MESSAGE_VALIDATORS,
    MSGID_APIS,
    Problem,
    check_touser,
)
from wechatsim.tokens import BEIJING_OFFSET_S, DAY_S, TokenBook

# Customer-service window (rules since 2023-06): after a citizen's message 5 sends in
# 48 h; after a click, follow or scan 3 sends in 1 minute.
CS_RULES = {"message": (48 * 3600.0, 5), "event": (60.0, 3)}
_MSGID_BASE = 3_000_000_000_000_000_000


def _err(problem: tuple[int, str]) -> dict[str, Any]:
    return {"errcode": problem[0], "errmsg": problem[1]}


class SimState:
    """Everything the simulated platform remembers; every public method takes the lock."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.lock = threading.Lock()
        self._openid_re = re.compile(config.openid_pattern)
        self._dedupe_re = re.compile(config.dedupe_pattern)
        self._reset_locked()

    def _reset_locked(self) -> None:
        cfg = self.config
        now = cfg.clock()
        self.tokens = TokenBook(cfg)
        self.faults = FaultBoard(random.Random(cfg.seed))
        self.faults.install(cfg.faults, now, replace=True)
        self.latency_s = cfg.latency_ms / 1000.0
        self.followers: set[str] | None = None if cfg.followers is None else set(cfg.followers)
        self.refused: set[str] = set(cfg.refused)
        self._interactions: dict[str, list[Any]] = {}
        self._quota_used: Counter[tuple[str, str, int]] = Counter()
        self._messages: list[dict[str, Any]] = []
        self._calls: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._dedupe: Counter[tuple[str, str]] = Counter()
        self._msgids = itertools.count(_MSGID_BASE + 1)
        self._account = Account(self._openid_re)
        self._token_calls: Counter[str] = Counter()

    # --- the call path ---------------------------------------------------------------

    def plan(self, api: str, touser: str | None) -> Plan:
        """Decide the faults for one call (and revoke the token if a rule says so)."""
        with self.lock:
            now = self.config.clock()
            plan = self.faults.plan(api, touser, now)
            plan.latency_s += self.latency_s
            if plan.invalidate_token:
                self.tokens.invalidate_current(now)
            return plan

    def count(self, api: str, outcome: str) -> None:
        """Count a call that a fault answered (errcode or fault kind)."""
        with self.lock:
            self._calls[api][outcome] += 1

    def get_token(self, args: Mapping[str, str]) -> dict[str, Any]:
        """GET /cgi-bin/token?grant_type=client_credential&appid=&secret=."""
        with self.lock:
            self._token_calls["token"] += 1
            result = self._credentials(args)
            if result is None:
                value, ttl = self.tokens.issue(self.config.clock())
                result = {"access_token": value, "expires_in": ttl}
            self._calls["token"][str(result.get("errcode", 0))] += 1
            return result

    def stable_token(self, payload: Any, problem: Problem) -> dict[str, Any]:
        """POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}."""
        with self.lock:
            self._token_calls["stable_token"] += 1
            result = _err(problem) if problem else self._credentials(payload)
            if result is None:
                force = payload.get("force_refresh") is True
                if force:
                    self._token_calls["force_refresh"] += 1
                code, msg, value, ttl = self.tokens.stable(self.config.clock(), force)
                result = {"access_token": value, "expires_in": ttl} if code == 0 else _err(
                    (code, msg))
            self._calls["stable_token"][str(result.get("errcode", 0))] += 1
            return result

    def call(self, api: str, access_token: str | None, payload: Any,
             problem: Problem) -> dict[str, Any]:
        """One authenticated API call: token, quota, payload, recipient rules, record."""
        with self.lock:
            now = self.config.clock()
            result = self._call_locked(api, access_token, payload, problem, now)
            self._calls[api][str(result.get("errcode", 0))] += 1
            return result

    def _credentials(self, args: Mapping[str, Any]) -> dict[str, Any] | None:
        if args.get("grant_type") != "client_credential":
            return _err((40002, "invalid grant_type"))
        if args.get("appid") != self.config.app_id:
            return _err((40013, "invalid appid"))
        if args.get("secret") != self.config.app_secret:
            return _err((40125, "invalid appsecret"))
        return None

    def _call_locked(self, api: str, access_token: str | None, payload: Any,
                     problem: Problem, now: float) -> dict[str, Any]:
        code, msg = self.tokens.check(access_token, now)
        if code:
            return _err((code, msg))
        quota = self._quota(api, now)
        if quota:
            return _err(quota)
        if problem:
            return _err(problem)
        if api not in MESSAGE_VALIDATORS:
            result = self._account.handle(api, payload)
            return result if result is not None else _err((48001, "api unauthorized"))
        return self._send(api, payload, now)

    def _quota(self, api: str, now: float) -> Problem:
        # Platform: 45011 is the per-minute quota, 45009 the daily (or frequency) quota.
        for table, period, offset, problem in (
            (self.config.minute_quotas, 60, 0.0, (45011, "api minute-quota reach limit")),
            (self.config.daily_quotas, DAY_S, BEIJING_OFFSET_S,
             (45009, "reach max api daily quota limit")),
        ):
            limit = table.get(api)
            if limit is None:
                continue
            window = (api, str(period), int((now + offset) // period))
            if self._quota_used[window] >= limit:
                return problem
            self._quota_used[window] += 1
        return None

    def _send(self, api: str, payload: dict[str, Any], now: float) -> dict[str, Any]:
        problem = (check_touser(payload, self._openid_re) or MESSAGE_VALIDATORS[api](payload)
                   or self._recipient_problem(api, payload, now))
        if problem:
            return _err(problem)
        touser = payload["touser"]
        msgid = next(self._msgids)
        key = self._dedupe_key(payload)
        self._dedupe[(touser, key)] += 1
        self._messages.append({"msgid": msgid, "api": api, "touser": touser, "time": now,
                               "dedupe_key": key, "payload": payload})
        if api == "message/custom/send" and touser in self._interactions:
            self._interactions[touser][2] += 1
        result = _err((0, "ok"))
        if api in MSGID_APIS:
            result["msgid"] = msgid
        return result

    def _recipient_problem(self, api: str, payload: dict[str, Any], now: float) -> Problem:
        touser = payload["touser"]
        if api in FOLLOWER_APIS and self.followers is not None and touser not in self.followers:
            return (43004, "require subscribe")
        if api in CONSENT_APIS and (
            touser in self.refused or f"{touser}:{payload.get('template_id')}" in self.refused
        ):
            return (43101, "user refuse to accept the msg")
        if api == "message/custom/send" and self.config.cs_window:
            seen = self._interactions.get(touser)
            if seen is None:
                return (45015, "response out of time limit or subscription is canceled")
            span, limit = CS_RULES[seen[0]]
            if now - seen[1] > span:
                return (45015, "response out of time limit or subscription is canceled")
            if seen[2] >= limit:
                return (45047, "out of response count limit")
        return None

    def _dedupe_key(self, payload: dict[str, Any]) -> str:
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        match = self._dedupe_re.search(text)
        if match:
            return match.group(1)
        return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    # --- the control API -------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start-up configuration: no tokens, messages, stats or runtime faults."""
        with self.lock:
            self._reset_locked()

    def install_faults(self, rules: Iterable[FaultRule], *, replace: bool,
                       latency_ms: float | None = None) -> list[dict[str, Any]]:
        """Add or replace fault rules and optionally change the base latency."""
        with self.lock:
            now = self.config.clock()
            self.faults.install(rules, now, replace=replace)
            if latency_ms is not None:
                self.latency_s = float(latency_ms) / 1000.0
            return self.faults.describe(now)

    def describe_faults(self) -> dict[str, Any]:
        """Active rules and the base latency."""
        with self.lock:
            return {"rules": self.faults.describe(self.config.clock()),
                    "latency_ms": self.latency_s * 1000.0}

    def invalidate_token(self, *, expired: bool = False) -> str | None:
        """Revoke the current token now (40001, or 42001 when expired)."""
        with self.lock:
            return self.tokens.invalidate_current(self.config.clock(), expired=expired)

    def set_recipients(self, followers: Any = ..., refused: Any = ..., *, add: bool) -> dict:
        """Replace (or extend with add=True) the follower list and the consent refusals."""
        with self.lock:
            if followers is None:
                self.followers = None
            elif followers is not ...:
                base = self.followers if add and self.followers is not None else set()
                self.followers = base | set(followers)
            if refused is not ...:
                self.refused = (self.refused if add else set()) | set(refused or ())
            return {"followers": None if self.followers is None else len(self.followers),
                    "refused": len(self.refused)}

    def interact(self, openid: str, kind: str) -> None:
        """A citizen's message or event opens a new customer-service window."""
        if kind not in CS_RULES:
            raise ValueError(f"kind must be one of {sorted(CS_RULES)}")
        with self.lock:
            self._interactions[openid] = [kind, self.config.clock(), 0]

    def messages(self, touser: str | None = None, api: str | None = None,
                 since: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Accepted messages, oldest first, filtered."""
        with self.lock:
            out = [m for m in self._messages
                   if (touser is None or m["touser"] == touser)
                   and (api is None or m["api"] == api)
                   and (since is None or m["time"] >= since)]
        return out[:limit] if limit is not None else out

    def stats(self) -> dict[str, Any]:
        """Counts per API and outcome, accepted messages, token calls, duplicates."""
        with self.lock:
            accepted = Counter(m["api"] for m in self._messages)
            dupes = [(k, n) for k, n in self._dedupe.items() if n > 1]
            return {
                "calls": {api: dict(c) for api, c in self._calls.items()},
                "accepted": dict(accepted),
                "accepted_total": len(self._messages),
                "tokens": {**dict(self._token_calls), "issued": self.tokens.issued},
                "faults_fired": dict(self.faults.fired),
                "duplicates": {
                    "pairs": len(dupes),
                    "extra_messages": sum(n - 1 for _, n in dupes),
                    "sample": [{"touser": k[0], "key": k[1], "count": n} for k, n in dupes[:20]],
                },
            }
