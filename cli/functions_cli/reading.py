"""Looking: the workers, one worker's state, its deployments, and its log lines (the newest,
or followed live over Server-Sent Events, resumed where a dropped connection left off)."""

import json
import time
from typing import Annotated

import httpx
import typer
from rich.table import Table

from .api import Api
from .common import (
    JsonFlag,
    command,
    emit,
    err,
    out,
    short,
    signed_in,
    signed_in_worker,
)

RETRY_SECONDS = (1, 2, 5, 10)


def all_workers(api: Api) -> list[dict]:
    workers, after = [], None
    while True:
        page = api.call(
            "GET", "/workers", params={"limit": 500, **({"after": after} if after else {})}
        )
        workers += page["workers"]
        after = page["next"]
        if after is None:
            return workers


@command
def list_workers(as_json: JsonFlag = False):
    """The workers of your tenant."""
    api, _ = signed_in()
    workers = all_workers(api)

    def human():
        table = Table("Worker", "Production", "Latest", "URL", box=None)
        for w in workers:
            latest = w.get("latestDeployment") or {}
            table.add_row(
                w["name"],
                short((w.get("production") or {}).get("id")) or "-",
                f"{short(latest.get('id'))} {latest.get('status', '')}".strip() or "-",
                w["url"],
            )
        out.print(table if workers else "No workers yet: `functions init` then `functions deploy`.")

    emit(as_json, {"workers": workers}, human)


@command
def status(
    worker: Annotated[str, typer.Argument(help="The worker's name.")], as_json: JsonFlag = False
):
    """A worker: production, the latest deployment, a canary under way."""
    api, found = signed_in_worker(worker)

    def human():
        production, latest = found.get("production"), found.get("latestDeployment")
        out.print(
            f"{found['name']} ({found['tenant']}), {'public' if found['public'] else 'private'}: {found['url']}"
        )
        if production:
            out.print(
                f"Production: {short(production['id'])} since {found.get('productionSince')}, promoted by {found.get('promotedBy') or '-'}"
            )
        else:
            out.print("Production: none yet")
        if latest and (not production or latest["id"] != production["id"]):
            step = f" ({latest['buildStep']})" if latest.get("buildStep") else ""
            out.print(f"Latest: {short(latest['id'])} {latest['status']}{step}")
            if latest.get("errorMessage"):
                out.print(f"  {latest['errorMessage']}", markup=False)
        if found.get("canary"):
            canary = found["canary"]
            out.print(f"Canary: {short(canary['deployment']['id'])} takes {canary['percent']}%")

    emit(as_json, found, human)


@command
def deployments(
    worker: Annotated[str, typer.Argument(help="The worker's name.")], as_json: JsonFlag = False
):
    """A worker's deployments, newest first."""
    api, found = signed_in_worker(worker)
    listed = api.call("GET", f"/workers/{found['id']}/deployments")["deployments"]
    production = (found.get("production") or {}).get("id")

    def human():
        table = Table("Deployment", "Status", "Created", "", box=None)
        for d in listed:
            table.add_row(
                short(d["id"]),
                d["status"],
                d["createdAt"],
                "production" if d["id"] == production else "",
            )
        out.print(table)

    emit(as_json, {"deployments": listed}, human)


def line_text(line: dict) -> str:
    return f"{line['timestamp']} {line['level']:<5} {line['function']} {line['requestId']} {line['message']}"


def show_line(line: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(line), flush=True)  # one line each (NDJSON), as they come
    else:
        out.print(line_text(line), markup=False)


@command
def logs(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing lines as they come.")
    ] = False,
    level: Annotated[str | None, typer.Option(help="debug, info, log, warn or error.")] = None,
    function: Annotated[str | None, typer.Option(help="Only this function's lines.")] = None,
    request: Annotated[
        str | None, typer.Option(help="Only one request's lines (its id or its start).")
    ] = None,
    as_json: JsonFlag = False,
):
    """A worker's log lines: the newest, or followed live (--follow) until Ctrl-C."""
    api, found = signed_in_worker(worker)
    filters = {
        k: v for k, v in {"level": level, "function": function, "request": request}.items() if v
    }
    if not follow:
        page = api.call("GET", f"/workers/{found['id']}/logs/poll", params=filters)
        for line in reversed(page["lines"]):  # oldest first, as a terminal reads
            show_line(line, as_json)
        return
    last_id, failures = None, 0
    if not as_json:
        err.print(f"Following {found['name']}'s lines (Ctrl-C to stop)…")
    while True:
        try:
            for event, event_id, data in api.events(
                f"/workers/{found['id']}/logs", filters, last_id
            ):
                failures = 0
                if event == "log":
                    show_line(json.loads(data), as_json)
                    last_id = event_id or last_id
        except httpx.TransportError as exc:  # RemoteProtocolError among them
            # A dropped connection: resume after the last line seen, losing and repeating none.
            wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            if not as_json:
                err.print(
                    f"[yellow]Connection lost ({exc.__class__.__name__}); resuming in {wait} s…[/]",
                    markup=True,
                )
            time.sleep(wait)
