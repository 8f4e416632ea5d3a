"""Reading log lines: one scope (a worker or a deployment), filters, and an id cursor."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import QuerySet

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
            lines = lines.filter(request_id__startswith=self.request)
        if self.q:
            lines = lines.filter(message__icontains=self.q)
        return lines

    def query(self, **extra) -> str:
        params = {k: v for k, v in vars(self).items() if v}
        params.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(params)


def cursor_from(value) -> int | None:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def lines_after(lines: QuerySet, cursor: int, limit: int) -> list[LogEntry]:
    return list(lines.filter(id__gt=cursor).order_by("id")[:limit])


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
