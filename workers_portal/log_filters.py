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
