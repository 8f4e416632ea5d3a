"""Logging filters that keep the web process's output to one line per event."""

import logging

# The portal's HTMX partials poll every second while something runs; one access line per
# poll buried everything else (about 3,000 lines in a quarter of an hour).
POLLED = ("/panel/", "/badge/", "/logs/tail/")


class QuietPolls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        path = str(args[2]) if len(args) > 2 else ""
        return not any(part in path for part in POLLED)


class NoTracebackBelow500(logging.Filter):
    """A refusal the platform means (403, 404: a suspended tenant deploying, a viewer
    deleting) is one line; Django would add the whole traceback of the exception that
    carried it. Server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
