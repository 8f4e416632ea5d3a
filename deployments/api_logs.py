"""The JSON log API: a poll endpoint that answers at once, and a Server-Sent Events stream.

The cursor is the id of the last line seen. The stream sends it as each event's id, so a
client that reconnects with Last-Event-ID (as EventSource does by itself) loses and repeats
nothing. The stream is an async view: under ASGI an open stream holds no thread.
"""

import asyncio
import json
import logging

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from workers.api_keys import principal_for
from workers.models import Worker

from .ingest import channel
from .logs import LogFilter, as_json, cursor_from, latest_lines, lines_after
from .models import LogEntry

log = logging.getLogger(__name__)
BATCH = 500
RECHECK_SECONDS = 2.0  # a lost wake-up delays a line by at most this


def api_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def worker_lines(worker: Worker):
    return LogEntry.objects.select_related("deployment").filter(deployment__worker=worker)


def find_worker(request, code) -> Worker | JsonResponse:
    """The worker if the caller (API key with read scope, or member) may read its logs."""
    principal = principal_for(request)
    if principal is None:
        return api_error(
            401, "unauthenticated", "Log in or send `Authorization: Bearer <API key>`."
        )
    worker = Worker.objects.filter(tenant_id__in=principal.tenant_ids, code=code).first()
    if worker is None:
        return api_error(404, "not_found", "No such worker.")
    if not principal.can(worker.tenant_id, "read"):
        return api_error(403, "forbidden", "This key lacks the read scope.")
    return worker


@require_GET
def logs_poll(request, code):
    worker = find_worker(request, code)
    if isinstance(worker, JsonResponse):
        return worker
    lines = worker_lines(worker)
    filters = LogFilter.from_params(request.GET)
    cursor = cursor_from(request.GET.get("cursor"))
    if cursor is None:  # no cursor yet: the newest lines, and the cursor to go on from
        found = latest_lines(filters.apply(lines), 100)
        cursor = lines.order_by("-id").values_list("id", flat=True).first() or 0
    else:
        batch = lines_after(lines, cursor, BATCH)
        matching = _matching(filters, lines, batch)
        found = [line for line in batch if line.id in matching]
        cursor = batch[-1].id if batch else cursor
    return JsonResponse({"lines": [as_json(line) for line in found], "cursor": cursor})


def _matching(filters: LogFilter, lines, batch) -> set[int]:
    return set(
        filters.apply(lines.filter(id__in=[b.id for b in batch])).values_list("id", flat=True)
    )


def event(line: LogEntry) -> str:
    return f"id: {line.id}\nevent: log\ndata: {json.dumps(as_json(line))}\n\n"


@require_GET
async def logs_stream(request, code):
    worker = await sync_to_async(find_worker)(request, code)
    if isinstance(worker, JsonResponse):
        return worker
    filters = LogFilter.from_params(request.GET)
    cursor = cursor_from(request.headers.get("Last-Event-ID") or request.GET.get("cursor"))
    response = StreamingHttpResponse(
        stream(worker, filters, cursor), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let proxies pass events through at once
    return response


async def stream(worker: Worker, filters: LogFilter, cursor: int | None):
    lines = worker_lines(worker)
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    try:
        # Subscribe before the first read, so a line stored in between still wakes us.
        await pubsub.subscribe(channel(worker.pk))
        yield "retry: 1000\n\n"
        if cursor is None:
            recent = await sync_to_async(latest_lines)(filters.apply(lines), 100)
            for line in recent:
                yield event(line)
            newest = await sync_to_async(
                lambda: lines.order_by("-id").values_list("id", flat=True).first()
            )()
            cursor = newest or 0
            yield f"id: {cursor}\n: caught up\n\n"
        idle = 0.0
        while True:
            batch = await sync_to_async(lines_after)(lines, cursor, BATCH)
            if batch:
                matching = await sync_to_async(_matching)(filters, lines, batch)
                for line in batch:
                    if line.id in matching:
                        yield event(line)
                cursor = batch[-1].id
                if cursor not in matching:  # move the client's Last-Event-ID past skipped lines
                    yield f"id: {cursor}\n\n"
                idle = 0.0
                if len(batch) == BATCH:
                    continue
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=RECHECK_SECONDS
            )
            if message is None:
                idle += RECHECK_SECONDS
                if idle >= settings.SSE_HEARTBEAT_SECONDS:
                    yield ": heartbeat\n\n"
                    idle = 0.0
    except asyncio.CancelledError:
        log.debug("log stream for worker %s closed by the client", worker.pk)
        raise
    finally:
        await pubsub.aclose()
        await client.aclose()
