"""Plain-Chinese words for what the push engine records: WeChat errcodes, our reasons, states.

Staff read a delivery page, not the platform documentation (../shared/docs/wechat-platform.md,
"Error codes to classify"). Every errcode push/channels.py classifies and every reason a
delivery row can carry (push/channels.py, push/deliver.py, push/sendcheck.py, push/fanout.py,
push/recovery.py) has a sentence here saying what happened and what, if anything, to do;
tests/test_reports.py reads those modules and fails when a new reason has no explanation.
An errcode nobody listed is still explained (`explain_errcode`), never shown bare.
"""

from __future__ import annotations

from bot.vocab import CampaignStatus, DeliveryStatus

# WeChat errcodes: the ones push/channels.py classifies plus the common per-recipient refusals
# its `api_error` class records as they come (40003, 40037, ...).
ERRCODE_TEXT: dict[int, str] = {
    -1: "微信系统繁忙：无法确定消息是否已发出，为避免重复不再重发",
    40001: "access_token 无效（已自动刷新后仍被拒绝），稍后自动重试",
    40003: "openid 无效：该用户不属于本公众号，或 openid 有误",
    40014: "access_token 不合法（已自动刷新后仍被拒绝），稍后自动重试",
    40037: "模板ID无效：模板已删除或不属于本公众号，请检查推送配置",
    42001: "access_token 已过期（已自动刷新后仍被拒绝），稍后自动重试",
    43004: "用户未关注公众号（已取消关注），不再向其推送",
    43101: "用户拒绝接收（未授权订阅或已取消订阅授权），已撤销其订阅授权",
    45009: "接口调用频率超限：已暂停该渠道，稍后自动续发",
    45011: "接口调用过于频繁：已暂停该渠道，稍后自动续发",
    45015: "客服消息超过 48 小时窗口：改用其他渠道",
    45047: "客服消息超过 48 小时窗口/条数：改用其他渠道",
    47003: "模板参数不合法：推送内容有误，已停止本次推送，请修改后重新提交",
    48001: "接口未授权：公众号未开通该接口权限，已停止本次推送，请检查公众号配置",
}

# Reasons stored in deliveries.reason (and campaign stop reasons for skipped rows).
REASON_TEXT: dict[str, str] = {
    # WeChat answers (push/channels.py ERROR_CLASSES and judge)
    "not_following": "用户未关注公众号（微信返回 43004）",
    "consent_refused": "用户拒绝接收（未授权订阅，微信返回 43101）",
    "quota": "接口调用频率超限，等待后续发",
    "window_closed": "客服消息 48 小时窗口已关闭或条数已满，改用其他渠道",
    "campaign_error": "推送本身有误（模板参数不合法或接口未授权），整次推送已停止",
    "system_busy": "微信系统繁忙，无法确定是否送达，不再重发",
    "token": "access_token 被拒绝，稍后重试",
    "api_error": "微信拒绝了这条消息（见错误码说明）",
    "ambiguous": "请求超时或连接中断，无法确定是否送达，为避免重复不再重发",
    "transport": "无法连接微信服务器，稍后重试",
    "internal_error": "本系统内部错误，无法确定是否送达，不再重发",
    # channel choice and send-time checks (push/channels.py, push/sendcheck.py)
    "no_channel": "没有可用渠道：用户未授权订阅通知，且不在 48 小时客服消息窗口内",
    "unfollowed": "用户已取消关注公众号",
    "unsubscribed": "用户已退订该栏目或发送了“全部退订”",
    "too_many_attempts": "重试次数过多，放弃发送",
    # the campaign stopped or was cancelled (push/sendcheck.py, push/fanout.py)
    "record_not_public": "所附信息已不再是“主动公开”，推送已停止，剩余消息未发送",
    "record_expired": "所附通知已过有效期，推送已停止，剩余消息未发送",
    "campaign_stopped": "推送已停止，剩余消息未发送",
    "campaign_cancelled": "推送已被取消，剩余消息未发送",
    # worker recovery (push/recovery.py)
    "job_failed": "发送任务多次失败，已放弃剩余消息",
    "interrupted": "发送进程中断，无法确定是否送达，不再重发",
}

CHANNEL_LABEL: dict[str, str] = {
    "bizsend": "订阅通知",
    "subscribe_once": "一次性订阅消息",
    "custom": "客服消息",
    "template": "模板消息",
}

DELIVERY_STATUS_LABEL: dict[str, str] = {
    DeliveryStatus.PENDING.value: "待发送",
    DeliveryStatus.SENDING.value: "发送中",
    DeliveryStatus.SENT.value: "已发送",
    DeliveryStatus.FAILED.value: "失败",
    DeliveryStatus.SKIPPED.value: "跳过",
    DeliveryStatus.UNKNOWN.value: "结果未知",
}

CAMPAIGN_STATUS_LABEL: dict[str, str] = {
    CampaignStatus.DRAFT.value: "草稿",
    CampaignStatus.SUBMITTED.value: "待审核",
    CampaignStatus.APPROVED.value: "已批准",
    CampaignStatus.REJECTED.value: "已退回",
    CampaignStatus.SCHEDULED.value: "已定时",
    CampaignStatus.SENDING.value: "发送中",
    CampaignStatus.DONE.value: "已完成",
    CampaignStatus.CANCELLED.value: "已取消",
    CampaignStatus.STOPPED.value: "已停止",
}


def explain_errcode(errcode: int | None) -> str:
    """What a WeChat errcode means for staff ("" for none)."""
    if errcode is None:
        return ""
    return ERRCODE_TEXT.get(int(errcode),
                            f"微信返回错误码 {errcode}（未收录的错误，请联系技术人员）")


def explain_reason(reason: str | None) -> str:
    """What a delivery row's reason means for staff ("" for none)."""
    if not reason:
        return ""
    return REASON_TEXT.get(reason, f"其他原因：{reason}")


def explain(reason: str | None, errcode: int | None = None) -> str:
    """One sentence for a failure or skip: the errcode's meaning first, else the reason's."""
    if errcode is not None and int(errcode) in ERRCODE_TEXT:
        return ERRCODE_TEXT[int(errcode)]
    if reason and reason in REASON_TEXT and not (reason == "api_error" and errcode is not None):
        return REASON_TEXT[reason]
    if errcode is not None:
        return explain_errcode(errcode)
    return explain_reason(reason)


# What push.review.what_changed names, as a reviewer reads it.
CHANGE_TEXT: dict[str, str] = {
    "title": "标题",
    "payload.text": "客服消息内容",
    "payload.template": "订阅通知/模板消息内容",
    "payload.once": "一次性订阅消息内容",
    "template_id": "消息模板",
    "urgent": "紧急标记",
    "audience": "推送对象",
    "approval hash": "审核哈希",
}


def explain_change(part: str) -> str:
    """A changed part of a campaign (push.review.what_changed) in Chinese, with its name."""
    if part.startswith("record "):
        return f"所附信息 {part.removeprefix('record ')} 的内容"
    words = CHANGE_TEXT.get(part)
    return f"{words}（{part}）" if words else part
