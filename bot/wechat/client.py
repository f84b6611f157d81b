"""Outbound WeChat API client: sends, menus and access-token fetches over one pooled transport.

Every call has a timeout. Outcomes are sorted by what the caller may do next:
a dict (errcode 0), WeChatAPIError (the platform said no), TransportError (the request
surely did not reach WeChat: safe to retry) and AmbiguousSend (a send that may or may not
have gone out: never blind-retry it, platform rule "no idempotency key"). How requests
travel is the transport's business (bot/wechat/transport.py: requests by default, or
pooled http.client keep-alive connections for the push workers). Only requests is
imported here: the WeChat core stays free of Flask, databases and Redis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import requests

from bot.errors import AmbiguousSend, TransportError, WeChatAPIError
from bot.wechat.transport import Answer, MaybeSent, NotSent, RequestsTransport, Transport

log = logging.getLogger("qzbot.wechat.client")

# Platform rule: 40001/40014/42001 mean the token is invalid or expired -> re-read the
# shared token (compare-and-refresh) and retry once. Such a call was surely not applied.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
SEND_APIS = frozenset({
    "message/custom/send",
    "message/template/send",
    "message/subscribe/bizsend",
    "message/template/subscribe",
})


class TokenSource(Protocol):
    """Where the client gets the shared access token and reports a rejected one."""

    def get(self) -> str:
        """The current access token (fetching it if there is none)."""
        ...

    def invalidate(self, failed: str) -> None:
        """WeChat rejected `failed`: refresh unless someone already has."""
        ...


def _with_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Accept {key: "text"} as shorthand for the platform's {key: {"value": "text"}}."""
    return {k: v if isinstance(v, Mapping) else {"value": v} for k, v in data.items()}


class WeChatClient:
    """The WeChat official-account API as qzbot uses it. Thread-safe; share one per process.

    transport: how requests travel; default a RequestsTransport over `session` (or a new
    session pooled for `pool_size` sending threads), e.g. `transport=KeepAliveTransport()`.
    """

    def __init__(self, base_url: str, app_id: str, app_secret: str, tokens: TokenSource,
                 timeout: tuple[float, float] = (3.05, 10),
                 session: requests.Session | None = None, *, pool_size: int = 32,
                 transport: Transport | None = None):
        if transport is not None and session is not None:
            raise ValueError("pass a session or a transport, not both")
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = app_secret
        self.tokens = tokens
        self.timeout = timeout
        self.transport: Transport = transport or RequestsTransport(session, pool_size=pool_size)

    @property
    def session(self) -> requests.Session | None:
        """The requests session of a RequestsTransport (None for other transports)."""
        return getattr(self.transport, "session", None)

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()

    # --- sends ---------------------------------------------------------------------

    def send_custom_text(self, openid: str, content: str) -> dict[str, Any]:
        """Customer-service text message (needs an open 48 h / 1 min window)."""
        payload = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return self._call("POST", "message/custom/send", payload)

    def send_custom_news(self, openid: str,
                         articles: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Customer-service news message: [{title, description, url, picurl}] (one article)."""
        payload = {"touser": openid, "msgtype": "news",
                   "news": {"articles": [dict(a) for a in articles]}}
        return self._call("POST", "message/custom/send", payload)

    def send_template(self, openid: str, template_id: str, data: Mapping[str, Any],
                      url: str | None = None) -> dict[str, Any]:
        """Template message; the answer carries the msgid."""
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                   "data": _with_values(data)}
        if url:
            payload["url"] = url
        return self._call("POST", "message/template/send", payload)

    def send_subscribe(self, openid: str, template_id: str, data: Mapping[str, Any],
                       page: str | None = None) -> dict[str, Any]:
        """Subscribe notification (bizsend); needs the citizen's consent for the template."""
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                   "data": _with_values(data)}
        if page:
            payload["page"] = page
        return self._call("POST", "message/subscribe/bizsend", payload)

    def send_subscribe_once(self, openid: str, template_id: str, scene: int | str,
                            title: str, content: str,
                            url: str | None = None) -> dict[str, Any]:
        """Legacy one-time subscription message: title <= 15 chars, content <= 200."""
        payload: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                   "scene": str(scene), "title": title,
                                   "data": {"content": {"value": content}}}
        if url:
            payload["url"] = url
        return self._call("POST", "message/template/subscribe", payload)

    # --- menu ----------------------------------------------------------------------

    def create_menu(self, menu: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the custom menu: {"button": [...]}."""
        return self._call("POST", "menu/create", dict(menu))

    def get_menu(self) -> dict[str, Any]:
        """The custom menu as {"menu": {"button": [...]}} (46003 when there is none)."""
        return self._call("GET", "menu/get", None)

    def delete_menu(self) -> dict[str, Any]:
        """Remove the custom menu."""
        return self._call("GET", "menu/delete", None)

    # --- access token --------------------------------------------------------------

    def fetch_stable_token(self, force_refresh: bool = False) -> tuple[str, int]:
        """(token, expires_in) from /cgi-bin/stable_token; force_refresh is 20/day, 30 s apart."""
        payload = {"grant_type": "client_credential", "appid": self.app_id,
                   "secret": self._secret, "force_refresh": bool(force_refresh)}
        return _token_pair("stable_token", self._once("POST", "stable_token", None, payload))

    def fetch_token(self) -> tuple[str, int]:
        """(token, expires_in) from /cgi-bin/token; it revokes the previous token in 5 min."""
        params = {"grant_type": "client_credential", "appid": self.app_id,
                  "secret": self._secret}
        return _token_pair("token", self._once("GET", "token", None, None, params=params))

    # --- plumbing ------------------------------------------------------------------

    def _call(self, method: str, api: str, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        token = self.tokens.get()
        try:
            return self._once(method, api, token, payload)
        except WeChatAPIError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            log.info("wechat %s: token rejected (errcode %s), refreshing and retrying once",
                     api, exc.errcode)
        self.tokens.invalidate(token)
        return self._once(method, api, self.tokens.get(), payload)

    def _once(self, method: str, api: str, token: str | None,
              payload: Mapping[str, Any] | None,
              params: Mapping[str, str] | None = None) -> dict[str, Any]:
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        body = None
        headers = None
        if payload is not None:
            # UTF-8 JSON without \u escapes: some platform APIs show escapes verbatim.
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8"}
        response = self._request(method, api, query, body, headers)
        return self._decode(api, response)

    def _request(self, method: str, api: str, query: Mapping[str, str], body: bytes | None,
                 headers: Mapping[str, str] | None) -> Answer:
        url = f"{self.base_url}/cgi-bin/{api}"
        try:
            return self.transport.request(method, url, query, body, headers, self.timeout)
        except NotSent as exc:
            raise TransportError(f"{api}: {exc.detail}") from None
        except MaybeSent as exc:
            raise self._ambiguous(api, exc.detail) from None

    def _decode(self, api: str, response: Answer) -> dict[str, Any]:
        if response.status_code >= 500:
            raise self._ambiguous(api, f"HTTP {response.status_code}")
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._ambiguous(api, f"HTTP {response.status_code}, non-JSON body "
                                       f"({len(response.content)} bytes)")
        errcode = data.get("errcode", 0)
        if errcode:
            raise WeChatAPIError(errcode, str(data.get("errmsg", "")), api)
        if response.status_code >= 400:  # not the platform's answer (a proxy, a wrong path)
            raise self._ambiguous(api, f"HTTP {response.status_code}")
        return data

    @staticmethod
    def _ambiguous(api: str, detail: str) -> AmbiguousSend | TransportError:
        """A send with an unknown outcome is ambiguous; any other call is merely retryable."""
        if api in SEND_APIS:
            return AmbiguousSend(api, detail)
        return TransportError(f"{api}: {detail}")


def _token_pair(api: str, data: Mapping[str, Any]) -> tuple[str, int]:
    try:
        return str(data["access_token"]), int(data["expires_in"])
    except (KeyError, TypeError, ValueError):
        raise TransportError(f"{api}: answer without access_token/expires_in") from None
