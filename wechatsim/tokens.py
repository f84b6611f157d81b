"""Access tokens of the simulator: issue, supersede with a grace period, check, revoke.

Not thread-safe on its own: `SimState` calls it under its lock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from wechatsim.config import SimConfig

DAY_S = 86400
# Beijing time: the platform's daily quotas reset at local midnight.
BEIJING_OFFSET_S = 8 * 3600


@dataclass
class _Token:
    value: str
    expires_at: float
    revoked_at: float | None = None
    expired: bool = False


class TokenBook:
    """The tokens issued so far and which one is current."""

    def __init__(self, config: SimConfig):
        self._config = config
        self._tokens: dict[str, _Token] = {}
        self._current: _Token | None = None
        self._force_times: list[float] = []
        self.issued = 0

    @property
    def current(self) -> str | None:
        """The newest token, if any."""
        return self._current.value if self._current else None

    def check(self, value: str | None, now: float) -> tuple[int, str]:
        """Errcode for a presented access_token: 0, 41001, 40001 or 42001."""
        if not value:
            return (41001, "access_token missing")
        token = self._tokens.get(value)
        if token is None:
            return (40001, "invalid credential, access_token is invalid or not latest")
        if token.expired or now >= token.expires_at:
            return (42001, "access_token expired")
        if token.revoked_at is not None and now >= token.revoked_at:
            return (40001, "invalid credential, access_token is invalid or not latest")
        return (0, "ok")

    def issue(self, now: float) -> tuple[str, int]:
        """A fresh token; the previous one keeps working for the grace period only."""
        # Platform rule: each /cgi-bin/token fetch invalidates the previous token after 5 min.
        previous = self._current
        if previous is not None and previous.revoked_at is None:
            previous.revoked_at = now + self._config.token_grace_s
        value = "SIM_" + secrets.token_urlsafe(48)
        token = _Token(value, now + self._config.token_ttl)
        self._tokens[value] = token
        self._current = token
        self.issued += 1
        self._prune(now)
        return value, self._config.token_ttl

    def stable(self, now: float, force: bool) -> tuple[int, str, str | None, int]:
        """stable_token: (errcode, errmsg, token, expires_in); the current one unless forced."""
        if force:
            # Platform rule: force_refresh at most 20 times a day, 30 s apart (errcodes unverified).
            day = (now + BEIJING_OFFSET_S) // DAY_S
            self._force_times = [
                t for t in self._force_times if (t + BEIJING_OFFSET_S) // DAY_S == day]
            if len(self._force_times) >= self._config.force_refresh_daily:
                return (45009, "reach max api daily quota limit", None, 0)
            last = self._force_times[-1] if self._force_times else None
            if last is not None and now - last < self._config.force_refresh_interval_s:
                return (45011, "api minute-quota reach limit, force_refresh too frequent", None, 0)
            self._force_times.append(now)
            value, ttl = self.issue(now)
            return (0, "ok", value, ttl)
        current = self._current
        if current is not None and self.check(current.value, now)[0] == 0:
            return (0, "ok", current.value, max(1, int(current.expires_at - now)))
        value, ttl = self.issue(now)
        return (0, "ok", value, ttl)

    def invalidate_current(self, now: float, *, expired: bool = False) -> str | None:
        """Revoke the current token at once (40001, or 42001 with expired=True)."""
        token = self._current
        if token is None:
            return None
        if expired:
            token.expired = True
        else:
            token.revoked_at = now
        self._current = None
        return token.value

    def _prune(self, now: float) -> None:
        if len(self._tokens) < 256:
            return
        keep_after = now - self._config.token_grace_s
        self._tokens = {
            v: t for v, t in self._tokens.items()
            if t is self._current or (t.expires_at > keep_after and
                                      (t.revoked_at is None or t.revoked_at > keep_after))
        }
