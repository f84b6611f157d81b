"""Customer-service texts that follow a passive reply: the replies queue's one job.

The webhook answers within WeChat's 5 seconds; what does not fit in the passive reply (or
an answer that overran its budget) goes out later as customer-service messages, sent by
this job from the replies queue (bot.jobs.REPLIES_QUEUE). The webhook does not import this
module: the composition root (bot/app.py) hands it `enqueue_customer_texts`.

Job arguments hold openids and texts (personal data): every job gets a description with
the openid's pseudonym only, since RQ logs descriptions, and this module logs `oh=`
pseudonyms, never texts.
"""

from __future__ import annotations

import logging

import redis
from rq import Queue, Retry

from bot.errors import AmbiguousSend, TransportError, WeChatAPIError
from bot.jobs import REPLIES_QUEUE, job_runtime
from bot.runtime import Runtime, openid_hash
from bot.wechat.client import WeChatClient
from push.token import create_shared_client

log = logging.getLogger("qzbot.jobs")


def wechat_client(rt: Runtime) -> WeChatClient:
    """The process's WeChat API client with the shared (Redis) access token."""
    client = rt.clients.wechat
    if client is None:
        wx = rt.settings.wechat
        client = create_shared_client(rt.redis, wx.api_base_url, wx.app_id, wx.app_secret,
                                      timeout=(3.05, wx.api_timeout_seconds))
        rt.clients.wechat = client
    return client


def enqueue_customer_texts(rt: Runtime, openid: str, texts: list[str]) -> None:
    """Queue texts to send later by customer-service message (after the passive reply)."""
    try:
        # RQ logs a job's description, by default the call with its arguments: the openid
        # and the texts are personal data, so the description names only the pseudonym
        Queue(REPLIES_QUEUE, connection=rt.redis).enqueue(
            send_customer_texts, openid, texts, retry=Retry(max=2, interval=[5, 30]),
            failure_ttl=7 * 86400,
            description=f"customer-service texts oh={openid_hash(openid)} n={len(texts)}")
    except redis.RedisError:
        log.error("could not queue %d customer-service text(s) for oh=%s", len(texts),
                  openid_hash(openid))


def send_customer_texts(openid: str, texts: list[str]) -> int:
    """Send texts in order as customer-service messages; returns how many went out.

    A transport error (surely not sent) is retried by RQ for the unsent rest; an ambiguous
    outcome or an API refusal is logged and not retried (no blind retry: platform doc).
    """
    rt = job_runtime()
    client = wechat_client(rt)
    for sent, text in enumerate(texts):
        try:
            client.send_custom_text(openid, text)
        except TransportError:
            if sent == 0:
                raise
            enqueue_customer_texts(rt, openid, texts[sent:])
            return sent
        except (AmbiguousSend, WeChatAPIError) as exc:
            log.warning("customer-service text not sent oh=%s: %s", openid_hash(openid), exc)
            return sent
    log.info("customer-service texts sent oh=%s n=%d", openid_hash(openid), len(texts))
    return len(texts)
