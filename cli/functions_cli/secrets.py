"""A worker's secrets: names and when they changed; values go in and never come out."""

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from .api import USAGE, Failure
from .common import (
    JsonFlag,
    command,
    emit,
    out,
    signed_in_worker,
    stdin_or_file,
)

app = typer.Typer(
    help="Secrets: list, set, unset (values are never printed).", no_args_is_help=True
)


@app.command("list")
@command
def list_secrets(
    worker: Annotated[str, typer.Argument(help="The worker's name.")], as_json: JsonFlag = False
):
    """The names, when each changed, and whether production still runs without the change."""
    api, found = signed_in_worker(worker)
    listed = api.call("GET", f"/workers/{found['id']}/secrets")

    def human():
        table = Table("Secret", "Changed", "", box=None)
        for s in listed["secrets"]:
            table.add_row(
                s["name"],
                s["updatedAt"],
                "not in production yet" if s["pendingInProduction"] else "",
            )
        for name in listed["removedPendingInProduction"]:
            table.add_row(name, "removed", "production still has it")
        out.print(
            table if listed["secrets"] or listed["removedPendingInProduction"] else "No secrets."
        )

    emit(as_json, listed, human)


@app.command("set")
@command
def set_secret(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    name: Annotated[
        str, typer.Argument(help="e.g. API_TOKEN (read in code as process.env.API_TOKEN).")
    ],
    value: Annotated[
        str | None,
        typer.Option(
            help="The value, @file, or @- for standard input (default: asked, not echoed)."
        ),
    ] = None,
    as_json: JsonFlag = False,
):
    """Set a secret; the next deployment runs with it."""
    if value is None:
        if not sys.stdin.isatty():
            raise Failure(
                "Give the value with --value (or @file, @-), or run in a terminal to be asked.",
                USAGE,
                "no_value",
            )
        value = getpass.getpass(f"Value of {name} (not shown): ")
    else:
        value = stdin_or_file(value)
    api, found = signed_in_worker(worker)
    saved = api.call("PUT", f"/workers/{found['id']}/secrets/{name}", {"value": value})
    emit(
        as_json,
        saved,
        lambda: out.print(
            f"{name} set on {worker}."
            + (
                " Production runs without it until the next deploy."
                if saved["pendingInProduction"]
                else ""
            )
        ),
    )


@app.command("unset")
@command
def unset_secret(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    name: Annotated[str, typer.Argument(help="The secret's name.")],
    as_json: JsonFlag = False,
):
    """Remove a secret; deployments after this run without it."""
    api, found = signed_in_worker(worker)
    api.call("DELETE", f"/workers/{found['id']}/secrets/{name}")
    emit(as_json, {"removed": name}, lambda: out.print(f"{name} removed from {worker}."))
