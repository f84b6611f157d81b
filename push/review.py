"""The reviewer approves what will be sent (先审查后发布: disclosure-rules.md, 细则 二(八)).

Invariant: a campaign is sent only while the sha256 of a canonical JSON of what its reviewer
saw — the rendered payload for every channel (customer-service text, one-time template /
subscribe, the topic's template with the --field overrides applied), the title, the template
id, the urgency, the audience definition and the attached records' content digests — equals
Campaign.approved_hash, stored at approval. Any change after approval (a field, a record's
text, the audience definition) sends the campaign back to review (`submitted`), audited as
`back_to_review` with what changed. A campaign approved before approval hashes existed (no
hash) is treated as changed: it goes back to review rather than out unreviewed.

The audience *size* is shown to the reviewer but not hashed: followers come and go, the
definition is what was approved. The send time is not hashed either (quiet hours guard it).

The payload is rendered from inputs kept beside it (`render_inputs`), so a changed record or an
edit renders it again here (`rerender`): the next reviewer sees the current text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import to_utc_naive
from bot.settings import Settings
from bot.store.models import AuditEntry, Campaign, Record
from bot.store.models import CampaignStatus as S
from push.audience import preview
from push.audit import SYSTEM, audit
from push.render import render_payload

HASH_VERSION = 1
# Statuses in which a campaign carries an approval that recheck() can confirm.
APPROVED_STATES = (S.APPROVED.value, S.SCHEDULED.value, S.SENDING.value)
# payload["render"] holds the render inputs (title, overrides, template id, digests); it is
# not sent, so it is not part of what the reviewer approves.
RENDER_KEY = "render"


def _sha(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def audience_definition(campaign: Campaign) -> dict[str, Any]:
    """Who the campaign is for, as defined (not resolved): topic, filters, list or everyone."""
    return {"topic": campaign.topic, "district": campaign.district,
            "notice_kind": campaign.notice_kind, "all_followers": bool(campaign.all_followers),
            "openids": sorted({str(o) for o in campaign.openids}) if campaign.openids else None}


def record_digests(session: Session, campaign: Campaign) -> dict[str, str | None]:
    """Each attached record's content digest now (None: the record is gone)."""
    digests: dict[str, str | None] = {}
    for key in campaign.record_keys or []:
        kind, _, rid = key.partition(":")
        digests[key] = session.scalar(select(Record.digest).where(Record.kind == kind,
                                                                  Record.rid == rid))
    return digests


def sent_payload(campaign: Campaign) -> dict[str, Any]:
    """The payload per channel exactly as the workers send it (render inputs left out)."""
    return {k: v for k, v in (campaign.payload or {}).items() if k != RENDER_KEY}


def review_components(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The parts of what is approved, each hashed (records by their digest), for diffs."""
    payload = sent_payload(campaign)
    template = payload.get("template") or {}
    return {"v": HASH_VERSION, "title": _sha(campaign.title),
            "payload": {channel: _sha(value) for channel, value in sorted(payload.items())},
            "template_id": template.get("template_id"), "urgent": bool(campaign.urgent),
            "audience": _sha(audience_definition(campaign)),
            "records": record_digests(session, campaign)}


def review_hash(session: Session, campaign: Campaign) -> str:
    """sha256 hex of the canonical JSON of what the reviewer approves."""
    return _sha(review_components(session, campaign))


def seal(session: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """Store the approval hash and time; returns the components (kept in the approve audit)."""
    components = review_components(session, campaign)
    campaign.approved_hash = _sha(components)
    campaign.approved_at = to_utc_naive(now)
    return components


def _approved_components(session: Session, campaign: Campaign) -> dict[str, Any] | None:
    entry = session.scalar(select(AuditEntry).where(
        AuditEntry.campaign_id == campaign.id, AuditEntry.action == "approve")
        .order_by(AuditEntry.id.desc()).limit(1))
    return (entry.detail or {}).get("review") if entry is not None else None


def what_changed(before: dict[str, Any] | None, now: dict[str, Any]) -> list[str]:
    """Human-readable names of the parts that differ (everything if nothing was recorded)."""
    if not before:
        return ["no approval hash (approved before hashes were kept)"]
    changed = [f"payload.{ch}" for ch in sorted(set(before.get("payload", {}))
                                                | set(now["payload"]))
               if before.get("payload", {}).get(ch) != now["payload"].get(ch)]
    changed += [part for part in ("title", "template_id", "urgent", "audience")
                if before.get(part) != now[part]]
    old_records = before.get("records", {})
    changed += [f"record {key}" for key in sorted(set(old_records) | set(now["records"]))
                if old_records.get(key) != now["records"].get(key)]
    return changed or ["approval hash"]


def recheck(session: Session, settings: Settings, campaign: Campaign, now: datetime) -> bool:
    """True if what would be sent is what was approved; else back to review (audited), False.

    Called by the push engine at campaign start, at planning and at every batch. A campaign
    that is not approved/scheduled/sending is never sendable: False, left unchanged. The
    caller commits (domain functions never commit).
    """
    if campaign.status not in APPROVED_STATES:
        return False
    components = review_components(session, campaign)
    if campaign.approved_hash and hmac.compare_digest(_sha(components),
                                                      campaign.approved_hash):
        return True
    changed = what_changed(_approved_components(session, campaign)
                           if campaign.approved_hash else None, components)
    send_back(session, settings, campaign, now, SYSTEM, changed)
    return False


def send_back(session: Session, settings: Settings, campaign: Campaign, now: datetime,
              actor: str, changed: list[str]) -> None:
    """Back to review: status submitted, approval cleared, payload re-rendered if a record
    changed (so the next review shows the new text), audited `back_to_review`."""
    before = campaign.status
    campaign.status = S.SUBMITTED.value
    campaign.approver = None
    campaign.approved_hash = None
    campaign.approved_at = None
    campaign.updated_at = to_utc_naive(now)
    detail: dict[str, Any] = {"before": before, "after": campaign.status, "changed": changed}
    if any(part.startswith("record ") for part in changed):
        problems = rerender(session, settings, campaign, now)
        detail["rerendered"] = not problems
        if problems:
            detail["problems"] = problems[:10]
    audit(session, actor, "back_to_review", now, campaign.id, **detail)


def render_inputs(title: str, overrides: dict[str, str], template: dict | None,
                   truncate: bool, records: list[Record]) -> dict:
    """What the payload was rendered from, so an edit or a changed record can re-render it."""
    return {"title": title, "overrides": dict(overrides), "truncate": truncate,
            "template_id": template["template_id"] if template else None,
            "digests": {r.key: r.digest for r in records}}


def rerender(session: Session, settings: Settings, campaign: Campaign, now: datetime, *,
             title: str | None = None, overrides: dict[str, str] | None = None) -> list[str]:
    """Render the payload again from the current records (and new title/fields); problems
    leave the campaign unchanged."""
    old = campaign.payload or {}
    inputs = dict(old.get(RENDER_KEY) or _legacy_inputs(campaign))
    problems: list[str] = []
    records = []
    for key in campaign.record_keys:
        kind, _, rid = key.partition(":")
        record = session.scalar(select(Record).where(Record.kind == kind, Record.rid == rid))
        if record is None:
            problems.append(f"record {key}: not found")
        records.append(record)
    known = {spec["template_id"]: spec for spec in settings.push.templates.values()}
    template = known.get(inputs["template_id"]) if inputs.get("template_id") else None
    if inputs.get("template_id") and template is None:
        problems.append(f"template {inputs['template_id']!r} is no longer configured")
    if problems:
        return problems
    merged = {**inputs.get("overrides", {}), **(overrides or {})}
    title = title or inputs["title"]
    payload = render_payload(records, title, template, merged, bool(inputs.get("truncate")),
                             now, problems)
    if not problems:
        payload[RENDER_KEY] = render_inputs(title, merged, template,
                                             bool(inputs.get("truncate")), records)
        campaign.payload = payload
        campaign.title = title[:200]
    return problems


def _legacy_inputs(campaign: Campaign) -> dict:
    """Render inputs of a campaign rendered before they were kept: its values as overrides."""
    template = (campaign.payload or {}).get("template") or {}
    return {"title": campaign.title, "truncate": False,
            "template_id": template.get("template_id"),
            "overrides": {k: v.get("value", "") for k, v in (template.get("data") or {}).items()},
            "digests": {}}


def describe(session: Session, campaign: Campaign) -> list[str]:
    """What the reviewer approves, as lines: every channel's payload, template, urgency,
    audience definition and its size counted now, and the review hash."""
    payload = sent_payload(campaign)
    template = payload.get("template") or {}
    aud = audience_definition(campaign)
    lines = [f"urgent: {'yes (may go out in quiet hours)' if campaign.urgent else 'no'}",
             f"template: {template.get('template_id') or '-'}"
             + (f" ({template.get('channel')}, long-term {bool(template.get('long_term'))})"
                if template else ""),
             "audience: " + _audience_text(aud) + f"; {preview(session, campaign)} now"]
    if template:
        fields = ", ".join(f"{k}={(v or {}).get('value', '')}"
                           for k, v in (template.get("data") or {}).items())
        lines.append(f"[{template.get('channel', 'subscribe')}] {fields}"
                     + (f" url={template['url']}" if template.get("url") else ""))
    once = payload.get("once") or {}
    if once:
        lines.append(f"[one-time] {once.get('title', '')}: {once.get('content', '')}")
    text = payload.get("text") or ""
    lines.append("[customer-service text]")
    lines += [f"  {line}" for line in text.splitlines()] or ["  -"]
    for key, digest in record_digests(session, campaign).items():
        lines.append(f"record {key} digest {digest[:12] if digest else 'MISSING'}")
    lines.append(f"review hash: {review_hash(session, campaign)}")
    return lines


def _audience_text(aud: dict[str, Any]) -> str:
    if aud["all_followers"]:
        return "every follower (--all)"
    if aud["openids"] is not None:
        return f"explicit list of {len(aud['openids'])} openids"
    parts = [f"topic {aud['topic']}"]
    parts += [f"{name} {aud[name]}" for name in ("district", "notice_kind") if aud[name]]
    return ", ".join(parts)
