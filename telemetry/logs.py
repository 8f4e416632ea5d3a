"""Reading log lines: one scope (a worker or a deployment), filters, and an id cursor."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import QuerySet

from deployments.contract import REQUEST_ID

from .models import LogEntry


@dataclass
class LogFilter:
    level: str = ""
    function: str = ""
    request: str = ""
    q: str = ""

    @classmethod
    def from_params(cls, params) -> "LogFilter":
        level = params.get("level", "")
        return cls(
            level=level if level in LogEntry.Level.values else "",
            function=params.get("function", "").strip()[:200],
            request=params.get("request", "").strip()[:64],
            q=params.get("q", "").strip()[:200],
        )

    def apply(self, lines: QuerySet) -> QuerySet:
        if self.level:
            lines = lines.filter(level=self.level)
        if self.function:
            lines = lines.filter(function=self.function)
        if self.request:
            # A whole id is looked up through the index on it (a line's key leads with it);
            # a prefix has no index and reads the scope's lines (0.6 s for a million).
            if REQUEST_ID.fullmatch(self.request):
                lines = lines.filter(request_id=self.request)
            else:
                lines = lines.filter(request_id__startswith=self.request)
        if self.q:
            lines = lines.filter(message__icontains=self.q)
        return lines

    def __bool__(self) -> bool:
        return bool(self.level or self.function or self.request or self.q)

    def query(self, **extra) -> str:
        params = {k: v for k, v in vars(self).items() if v}
        params.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(params)


def of_worker(rows: QuerySet, worker) -> QuerySet:
    """A worker's lines (or invocations) by its deployments' ids, not by a join: Postgres then
    walks each deployment's (deployment, id) index newest first and stops at the page's end,
    where the join made it read and sort every row of a busy worker (2 s for a million)."""
    return rows.filter(deployment_id__in=list(worker.deployments.values_list("pk", flat=True)))


def cursor_from(value) -> int | None:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def lines_after(lines: QuerySet, cursor: int, limit: int) -> list[LogEntry]:
    return list(lines.filter(id__gt=cursor).order_by("id")[:limit])


def kept(filters: LogFilter, lines: QuerySet, batch: list[LogEntry]) -> list[LogEntry]:
    """Those of a batch read past a cursor (unfiltered, so the cursor moves over every line)
    that the filters keep; read again only when a filter is set."""
    if not filters or not batch:
        return batch
    chosen = filters.apply(lines.filter(id__in=[line.id for line in batch]))
    ids = set(chosen.values_list("id", flat=True))
    return [line for line in batch if line.id in ids]


def for_json(lines: QuerySet) -> QuerySet:
    """Lines with what `as_json` reads: of their deployment only its code (a deployment's row
    holds its program text, which came along with each of up to 500 lines)."""
    fields = ("id", "request_id", "seq", "function", "level", "message", "timestamp")
    return lines.select_related("deployment").only(*fields, "deployment__code")


def latest_lines(lines: QuerySet, limit: int) -> list[LogEntry]:
    """The newest `limit` lines, oldest first."""
    return list(lines.order_by("-id")[:limit])[::-1]


def lines_before(lines: QuerySet, before: int, limit: int) -> list[LogEntry]:
    return list(lines.filter(id__lt=before).order_by("-id")[:limit])[::-1]


def as_json(line: LogEntry) -> dict:
    return {
        "id": line.id,
        "requestId": line.request_id,
        "seq": line.seq,
        "function": line.function,
        "level": line.level,
        "message": line.message,
        "timestamp": line.timestamp.isoformat().replace("+00:00", "Z"),
        "deploymentId": str(line.deployment.code),
    }
