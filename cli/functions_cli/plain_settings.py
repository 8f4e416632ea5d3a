"""A worker's plain settings: names and values (shown: nothing secret belongs here)."""

from typing import Annotated

import typer
from rich.table import Table

from .common import JsonFlag, command, emit, out, signed_in_worker

app = typer.Typer(help="Plain settings: list, set, unset (values are shown).", no_args_is_help=True)
Worker = Annotated[str, typer.Argument(help="The worker's name.")]


@app.command("list")
@command
def list_settings(worker: Worker, as_json: JsonFlag = False):
    """The settings with their values, and whether production still runs without a change."""
    api, found = signed_in_worker(worker)
    listed = api.call("GET", f"/workers/{found['id']}/settings")

    def human():
        if not listed["settings"] and not listed["removedPendingInProduction"]:
            out.print("No plain settings.")
            return
        table = Table("Setting", "Value", "", box=None)
        for s in listed["settings"]:
            table.add_row(
                s["name"], s["value"], "not in production yet" if s["pendingInProduction"] else ""
            )
        for name in listed["removedPendingInProduction"]:
            table.add_row(name, "", "removed; production still has it")
        out.print(table)

    emit(as_json, listed, human)


@app.command("set")
@command
def set_setting(
    worker: Worker,
    name: Annotated[
        str, typer.Argument(help="e.g. FEATURE_X (read in code as ctx.env.FEATURE_X).")
    ],
    value: Annotated[str, typer.Argument(help="The value (shown to every member).")],
    as_json: JsonFlag = False,
):
    """Set a plain setting; the next deployment runs with it."""
    api, found = signed_in_worker(worker)
    saved = api.call("PUT", f"/workers/{found['id']}/settings/{name}", {"value": value})
    note = (
        " Production runs without it until the next deploy." if saved["pendingInProduction"] else ""
    )
    emit(as_json, saved, lambda: out.print(f"{name}={value} set on {worker}.{note}", markup=False))


@app.command("unset")
@command
def unset_setting(
    worker: Worker,
    name: Annotated[str, typer.Argument(help="The setting's name.")],
    as_json: JsonFlag = False,
):
    """Remove a plain setting; deployments after this run without it."""
    api, found = signed_in_worker(worker)
    api.call("DELETE", f"/workers/{found['id']}/settings/{name}")
    emit(as_json, {"removed": name}, lambda: out.print(f"{name} removed from {worker}."))
