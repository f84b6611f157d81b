"""The account's menu and user tags in the simulator (menu/*, tags/*).

Not thread-safe on its own: `SimState` calls it under its lock.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from wechatsim.rules import validate_menu


def _err(code: int, msg: str) -> dict[str, Any]:
    return {"errcode": code, "errmsg": msg}


class Account:
    """Custom menu and tags of the simulated official account."""

    def __init__(self, openid_re: re.Pattern[str]):
        self._openid_re = openid_re
        self._menu: dict[str, Any] | None = None
        self._tags: dict[int, dict[str, Any]] = {}
        self._tag_ids = itertools.count(100)

    def handle(self, api: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Answer a menu/* or tags/* call; None when `api` is not one of them."""
        if api == "menu/get":
            return {"menu": self._menu} if self._menu else _err(46003, "menu no exist")
        if api == "menu/delete":
            self._menu = None
            return _err(0, "ok")
        if api == "menu/create":
            problem = validate_menu(payload)
            if problem:
                return _err(*problem)
            self._menu = payload
            return _err(0, "ok")
        if api == "tags/get":
            return {"tags": [{"id": i, "name": t["name"], "count": len(t["members"])}
                             for i, t in self._tags.items()]}
        if api == "tags/create":
            return self._tag_create(payload)
        if api == "tags/members/batchtagging":
            return self._tag_members(payload)
        return None

    def _tag_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        tag = payload.get("tag")
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str) or not name:
            return _err(47001, "data format error")
        if len(name.encode("utf-8")) > 30:
            return _err(45158, "tag name too long")
        if any(t["name"] == name for t in self._tags.values()):
            return _err(45157, "invalid tag name")
        tag_id = next(self._tag_ids)
        self._tags[tag_id] = {"name": name, "members": set()}
        return {"tag": {"id": tag_id, "name": name}}

    def _tag_members(self, payload: dict[str, Any]) -> dict[str, Any]:
        openids = payload.get("openid_list")
        if not isinstance(openids, list) or not 1 <= len(openids) <= 50:
            return _err(40032, "invalid openid list size")
        tag = self._tags.get(payload["tagid"]) if isinstance(payload.get("tagid"), int) else None
        if tag is None:
            return _err(45159, "invalid tag id")
        if not all(isinstance(o, str) and self._openid_re.match(o) for o in openids):
            return _err(40003, "invalid openid")
        tag["members"].update(openids)
        return _err(0, "ok")
