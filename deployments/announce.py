"""Telling runtime hosts about deployments that changed, so they learn them before the first
call: a new ready deployment (its code is fetched ahead: the first call only starts its
isolate), a promotion or rollback (the production host points elsewhere), a visibility change
or a deletion (what they cached is stale).

Published on Redis; every host process holds one Server-Sent Events stream of them (an async
view, served under ASGI). A lost announcement only means the host learns at the first call,
as it would without them.
"""

import asyncio
import json
import logging

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from .ingest import redis_client

log = logging.getLogger(__name__)
CHANNEL = "runtime:hosts"


def announce(*hosts: str) -> None:
    """After commit: the hosts whose configuration changed."""
    names = sorted({h for h in hosts if h})

    def publish():
        try:
            redis_client().publish(CHANNEL, json.dumps({"hosts": names}))
        except redis.RedisError as exc:
            log.warning("Could not announce %s to the runtime: %s", names, exc)

    if names:
        transaction.on_commit(publish)


def announce_worker(worker) -> None:
    """A worker's production host, and each of its deployments' hosts."""
    hosts = [d.host for d in worker.deployments.select_related("worker", "tenant")]
    announce(worker.host, *hosts)


@require_GET
async def events(request):
    from .internal import runtime_token_ok

    if not runtime_token_ok(request):
        return HttpResponse(status=404)
    if not hasattr(request, "scope"):
        # Under WSGI a stream would hold a thread for good: hosts learn at first call.
        return HttpResponse(status=204)
    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


async def stream():
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(CHANNEL)
        yield ": announcements follow\n\n"
        idle = 0.0
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            if message is None:
                idle += 5.0
                if idle >= settings.SSE_HEARTBEAT_SECONDS:
                    yield ": heartbeat\n\n"
                    idle = 0.0
                continue
            idle = 0.0
            yield f"data: {message['data'].decode()}\n\n"
    except asyncio.CancelledError:
        raise
    finally:
        await pubsub.aclose()
        await client.aclose()
