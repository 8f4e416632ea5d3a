"""The JSON log API: a poll endpoint that answers at once, and a Server-Sent Events stream.

The cursor is the id of the last line seen. The stream sends it as each event's id, so a
client that reconnects with Last-Event-ID (as EventSource does by itself) loses and repeats
nothing. The stream's body is an async iterator: under ASGI an open stream holds no thread.
"""

import asyncio
import json
import logging
from uuid import UUID

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from telemetry.ingest import channel
from telemetry.logs import (
    LogFilter,
    as_json,
    for_json,
    kept,
    latest_lines,
    lines_after,
    of_worker,
)
from telemetry.models import LogEntry
from tenancy.access import Action
from workers.models import Worker

from .errors import not_found, require
from .schemas import TEXT, ErrorOut, LogLevel, LogPage

log = logging.getLogger(__name__)
router = Router(tags=["logs"])
BATCH = 500
RECHECK_SECONDS = 2.0  # a lost wake-up delays a line by at most this
ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}


# Query parameters are optional but never null: a query string cannot say null.
class Filters(Schema):
    level: LogLevel = None
    function: str = Field(None, max_length=200, pattern=TEXT)
    request: str = Field(
        None, max_length=64, pattern=TEXT, description="A request id or its start."
    )
    q: str = Field(None, max_length=200, pattern=TEXT, description="Text the line contains.")

    def as_filter(self) -> LogFilter:
        return LogFilter(
            level=self.level or "",
            function=(self.function or "").strip(),
            request=(self.request or "").strip(),
            q=(self.q or "").strip(),
        )


def worker_lines(worker: Worker):
    return of_worker(for_json(LogEntry.objects.all()), worker)


def readable_worker(request, code: UUID) -> Worker:
    worker = Worker.objects.visible_to(request.principal).filter(code=code).first()
    if worker is None:
        raise not_found("worker")
    require(request, Action.READ, worker)
    return worker


@router.get(
    "/workers/{uuid:id}/logs/poll",
    url_name="logs-poll",
    response={200: LogPage, **ERRORS},
    summary="Log lines after the cursor, at once (without a cursor: the newest lines)",
)
def logs_poll(
    request,
    id: UUID,
    filters: Query[Filters],
    cursor: int = Query(None, ge=0, description="The id of the last line seen."),
):
    worker = readable_worker(request, id)
    lines = worker_lines(worker)
    wanted = filters.as_filter()
    if cursor is None:  # no cursor yet: the newest lines, and the cursor to go on from
        found = latest_lines(wanted.apply(lines), 100)
        cursor = lines.order_by("-id").values_list("id", flat=True).first() or 0
    else:
        batch = lines_after(lines, cursor, BATCH)
        found = kept(wanted, lines, batch)
        cursor = batch[-1].id if batch else cursor
    return {"lines": [as_json(line) for line in found], "cursor": cursor}


def event(line: LogEntry) -> str:
    return f"id: {line.id}\nevent: log\ndata: {json.dumps(as_json(line))}\n\n"


@router.get(
    "/workers/{uuid:id}/logs",
    url_name="logs-stream",
    response={frozenset({400, 401, 403, 404}): ErrorOut},
    summary="Live log lines as Server-Sent Events (`event: log`, data a LogLine); "
    "Last-Event-ID resumes",
    openapi_extra={
        "responses": {
            "200": {
                "description": "A text/event-stream of LogLine events",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        }
    },
)
def logs_stream(
    request,
    id: UUID,
    filters: Query[Filters],
    cursor: int = Query(None, ge=0, description="Start after this line id."),
):
    worker = readable_worker(request, id)
    header = request.headers.get("Last-Event-ID", "")
    if header.isdigit():
        cursor = int(header)
    response = StreamingHttpResponse(
        stream(worker, filters.as_filter(), cursor), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let proxies pass events through at once
    return response


async def stream(worker: Worker, filters: LogFilter, cursor: int | None):
    lines = await sync_to_async(worker_lines)(worker)
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
            # Read the worker's deployments again: one deployed meanwhile is followed too.
            lines = await sync_to_async(worker_lines)(worker)
            batch = await sync_to_async(lines_after)(lines, cursor, BATCH)
            if batch:
                shown = await sync_to_async(kept)(filters, lines, batch)
                for line in shown:
                    yield event(line)
                cursor = batch[-1].id
                if not shown or shown[-1].id != cursor:  # the client's Last-Event-ID moves
                    yield f"id: {cursor}\n\n"  # past skipped lines too
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
