"""wechatpy for the WeChat APIs we do not wrap ourselves (menus, QR codes, user info, media).

`wechatpy_client(client)` returns a wechatpy WeChatClient that calls OUR API base URL
with OUR shared access token: it reads the token from the TokenSource our own
WeChatClient uses (the Redis-shared one in the workers and the app), and when WeChat
rejects it, asks that source to compare-and-refresh. It never fetches a token of its own:
wechatpy's `fetch_access_token` would call /cgi-bin/token, which revokes the token every
other process is using (platform rule, wechat-platform.md "Access token").

Only wechatpy's public customisation points are used: the `session` storage, the
`access_token` property, the `fetch_access_token` hook, `API_BASE_URL` and `timeout`.

Our own core (signature, crypto, messages, replies, client) stays hand-written where
wechatpy 1.8.18 is unsafe: it compares signatures with `==`, its PKCS#7 unpadding
returns empty bytes on a bad pad, it knows one EncodingAESKey (no rotation), its replies
put `]]>` and XML-illegal characters into CDATA as is, its HTTP calls have no timeout
by default, and each process refreshes the token by itself. Sends stay on our client
(ambiguous-send handling); tests/test_wechatpy_interop.py checks both agree on the wire.
"""

from __future__ import annotations

import threading
from typing import Any

from wechatpy.client import WeChatClient as WeChatPyClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.wechat.client import TOKEN_ERRCODES, TokenSource, WeChatClient

__all__ = ["SharedTokenStorage", "SharedTokenWeChatPy", "wechatpy_client"]


class SharedTokenStorage(SessionStorage):
    """wechatpy session storage whose access token is our TokenSource's; other keys in memory."""

    def __init__(self, tokens: TokenSource, token_key: str):
        self._tokens = tokens
        self._token_key = token_key
        self._data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        """The shared token for the access-token key, else what wechatpy stored."""
        if key == self._token_key:
            return self._tokens.get()
        return self._data.get(key, default)

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        """Store wechatpy's other values; the access token is never written from here."""
        if key != self._token_key and value is not None:
            self._data[key] = value

    def delete(self, key: str) -> None:
        """Forget a stored value (the shared token is not wechatpy's to delete)."""
        self._data.pop(key, None)


class SharedTokenWeChatPy(WeChatPyClient):
    """wechatpy's WeChatClient on our base URL and shared token (one refresh per rejection)."""

    def __init__(self, base_url: str, app_id: str, tokens: TokenSource,
                 timeout: tuple[float, float]):
        self._tokens = tokens
        self._used = threading.local()  # the token this thread's current call carries
        storage = SharedTokenStorage(tokens, f"{app_id}_access_token")
        super().__init__(app_id, "", session=storage, timeout=timeout, auto_retry=True)
        self.API_BASE_URL = f"{base_url.rstrip('/')}/cgi-bin/"

    @property
    def access_token(self) -> str:
        """The shared token; read once at the start of each call (a retry reuses params)."""
        token = self._tokens.get()
        self._used.token, self._used.refreshed = token, False
        return token

    def fetch_access_token(self) -> dict[str, Any]:
        """WeChat rejected the token: compare-and-refresh the shared one, once per call."""
        failed = getattr(self._used, "token", None)
        if failed is None or getattr(self._used, "refreshed", False):
            # refused again after a refresh: stop (wechatpy would otherwise retry forever)
            raise WeChatClientException(min(TOKEN_ERRCODES), "access token refused after "
                                        "a refresh", client=self)
        self._used.refreshed = True
        self._tokens.invalidate(failed)
        token = self._tokens.get()
        self._used.token = token
        return {"access_token": token}


def wechatpy_client(client: WeChatClient) -> SharedTokenWeChatPy:
    """A wechatpy client sharing `client`'s base URL, app id, timeout and token source."""
    return SharedTokenWeChatPy(client.base_url, client.app_id, client.tokens, client.timeout)
