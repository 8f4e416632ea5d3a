"""Telling runtime hosts about deployments that changed, so they learn them before the first
call: a new ready deployment (its code is fetched ahead: the first call only starts its
isolate), a promotion or rollback (the production host points elsewhere), a visibility change
or a deletion (what they cached is stale); and, before a deployment is marked ready, a
request to load it (`preload`).

Published on Redis; every host process holds one Server-Sent Events stream of them
(runtime_api.views.events, served under ASGI). A lost announcement only means the host learns at the first call,
as it would without them.
"""

import asyncio
import json
import logging
import time
import uuid
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def channel() -> str:
    """Named after the Redis database: publishing reaches every database of a server, and two
    platforms sharing one server (each its own database) must not hear each other."""
    return f"runtime:hosts:{redis_client().connection_pool.connection_kwargs.get('db', 0)}"


def preload_channel() -> str:
    """Where preload requests go: heard only by the host processes that answer them (they
    follow the announcements with `?preloads=1`). A host of an earlier version, still running
    during a rolling upgrade, follows the announcements alone and is not waited for."""
    return f"{channel()}:preload"


@cache
def redis_client() -> redis.Redis:
    """The control plane's one Redis client (announcements here, live-tail wake-ups in
    telemetry.ingest)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def announce(*hosts: str) -> None:
    """After commit: the hosts whose configuration changed."""
    names = sorted({h for h in hosts if h})

    def publish():
        try:
            redis_client().publish(channel(), json.dumps({"hosts": names}))
        except redis.RedisError as exc:
            log.warning("Could not announce %s to the runtime: %s", names, exc)

    if names:
        transaction.on_commit(publish)


def preload(deployment) -> tuple[int, int]:
    """Before a deployment is ready: asks every runtime host process to load it where its
    tenant's sandbox runs, and waits until each has said it did (or has no sandbox of that
    tenant), for at most RUNTIME_PRELOAD_WAIT_SECONDS. Then its first call, however soon it
    comes after the ready commit, finds an isolate loaded. Each host that answers follows the
    preload requests on one subscription, so Redis's count of receivers is the count of
    answers to wait for. Returns how many were asked and how many answered."""
    client = redis_client()
    answers = f"runtime:preloaded:{uuid.uuid4().hex}"
    asked = {"host": deployment.host, "tenant": deployment.tenant_id, "answer": answers}
    hosts = answered = 0
    try:
        hosts = client.publish(preload_channel(), json.dumps({"preload": asked}))
        deadline = time.monotonic() + settings.RUNTIME_PRELOAD_WAIT_SECONDS
        while answered < hosts and (left := deadline - time.monotonic()) > 0.001:
            # A second at most per wait: the client's socket timeout (2 s) would end a longer
            # one as an error.
            if client.blpop([answers], timeout=min(left, 1.0)) is not None:
                answered += 1
        client.delete(answers)
    except redis.RedisError as exc:
        log.warning("Could not preload %s on the runtime: %s", deployment.host, exc)
    return hosts, answered


def announce_worker(worker) -> None:
    """A worker's production host, and each of its deployments' hosts."""
    hosts = [d.host for d in worker.deployments.select_related("worker", "tenant")]
    announce(worker.host, *hosts)


async def announcements(preloads: bool = False):
    """The announcements, as Server-Sent Events, until the listener goes away; with
    `preloads`, the preload requests too (for a host that answers them)."""
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(*([channel(), preload_channel()] if preloads else [channel()]))
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
