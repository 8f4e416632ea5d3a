"""Calling: a function of a worker (production, or a chosen deployment), and its durable
runs and schedules."""

import json
from typing import Annotated

import typer
from rich.table import Table

from .api import FAILED, Failure, json_of
from .common import (
    JsonFlag,
    command,
    emit,
    err,
    out,
    short,
    signed_in,
    signed_in_worker,
    stdin_or_file,
)
from .deploying import deployment_of


@command
def invoke(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    function: Annotated[str, typer.Argument(help="The exported function to call.")],
    data: Annotated[
        str, typer.Option(help="The JSON payload, @file, or @- for standard input.")
    ] = "{}",
    deployment: Annotated[
        str | None,
        typer.Option(help="Call this deployment (an id or its start) instead of production."),
    ] = None,
    as_json: JsonFlag = False,
):
    """Call a function: its result on stdout, its console lines on stderr (exit 1 if it fails)."""
    api, found = signed_in_worker(worker)
    payload = json_of(stdin_or_file(data))
    if deployment:
        target = deployment_of(api, found, deployment)
        base = target.get("url")
    else:
        base = found["url"] if found.get("production") else None
    if not base:
        raise Failure(
            f"{worker} serves nothing yet: deploy it, or name a ready deployment with --deployment.",
            FAILED,
            "not_live",
        )
    response = api.request("POST", f"{base}/api/invoke/{function}", payload, timeout=960)
    try:
        answer = response.json()
    except ValueError:
        raise Failure(
            f"The worker answered {response.status_code} without JSON.", FAILED, "bad_answer"
        ) from None
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        for line in answer.get("logs") or []:
            err.print(
                f"[dim]{line.get('level', 'log')}[/] {line.get('message', '')}",
                markup=True,
                highlight=False,
            )
        if "error" in answer:
            error = answer["error"]
            err.print(f"[bold red]{error.get('code')}:[/] {error.get('message')}", markup=True)
            if error.get("stack"):
                err.print(error["stack"], markup=False)
        else:
            out.print(json.dumps(answer.get("result"), indent=2), markup=False)
    if response.status_code >= 400:
        raise typer.Exit(FAILED)


runs = typer.Typer(
    help="Durable runs: list, show (with steps), replay, event.", no_args_is_help=True
)
schedules = typer.Typer(help="Schedules: list, add, pause, resume.", no_args_is_help=True)


@runs.command("list")
@command
def list_runs(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    status: Annotated[
        str | None, typer.Option(help="queued, running, retrying, succeeded, failed, dead…")
    ] = None,
    as_json: JsonFlag = False,
):
    """A worker's runs, newest first."""
    api, found = signed_in_worker(worker)
    page = api.call(
        "GET", f"/workers/{found['id']}/runs", params={"status": status} if status else None
    )

    def human():
        table = Table("Run", "Function", "Status", "Attempts", "Trigger", box=None)
        for run in page["runs"]:
            table.add_row(
                run["id"],
                run["function"],
                run["status"],
                f"{run['attemptCount']}/{run['maxAttempts']}",
                run["trigger"],
            )
        out.print(table if page["runs"] else "No runs.")

    emit(as_json, page, human)


@runs.command("show")
@command
def show_run(run: Annotated[str, typer.Argument(help="The run's id.")], as_json: JsonFlag = False):
    """One run: its status, durable steps, attempts, result or error."""
    api, _ = signed_in()
    found = api.call("GET", f"/runs/{run}")

    def human():
        out.print(
            f"{found['id']} {found['workerName']}.{found['function']}: {found['status']} ({found['attemptCount']}/{found['maxAttempts']} attempts)"
        )
        if found.get("error"):
            out.print(f"{found['error']['code']}: {found['error']['message']}", markup=False)
        for step in found.get("steps") or []:
            more = ""
            if step["status"] == "parked":
                more = f" until {step['until']}" + (
                    f", waiting for {step['event']}" if step["kind"] == "wait" else ""
                )
            elif step["status"] == "failed":
                more = f": {step['error']}"
            out.print(f"  {step['kind']:5} {step['name']}: {step['status']}{more}", markup=False)
            for line in step.get("logs") or []:
                out.print(f"      {line['level']:5} {line['message']}", markup=False)
        if found["status"] == "succeeded":
            out.print(json.dumps(found.get("result"), indent=2), markup=False)

    emit(as_json, found, human)


@runs.command("replay")
@command
def replay_run(
    run: Annotated[str, typer.Argument(help="The run's id.")],
    on_production: Annotated[
        bool, typer.Option(help="--no-on-production: on the deployment it first ran on.")
    ] = True,
    from_step: Annotated[str, typer.Option(help="Run again from this step on.")] = "",
    as_json: JsonFlag = False,
):
    """Run it again (a new run); with --from-step, the steps finished before that one are kept."""
    api, _ = signed_in()
    body: dict = {"onProduction": on_production}
    if from_step:
        body["fromStep"] = from_step
    again = api.call("POST", f"/runs/{run}/replay", body)
    emit(as_json, again, lambda: out.print(f"Replayed as run {again['id']} ({again['status']})."))


@runs.command("cancel")
@command
def cancel_run(
    run: Annotated[str, typer.Argument(help="The run's id.")], as_json: JsonFlag = False
):
    """Cancel a run that waits (queued, retrying, sleeping, waiting)."""
    api, _ = signed_in()
    done = api.call("POST", f"/runs/{run}/cancel")
    emit(as_json, done, lambda: out.print(f"Run {run} canceled."))


@runs.command("event")
@command
def send_event(
    run: Annotated[str, typer.Argument(help="The run's id.")],
    name: Annotated[str, typer.Argument(help="The event's name (what its wait waits for).")],
    data: Annotated[
        str, typer.Option(help="The payload, JSON (@file, @- for standard input).")
    ] = "null",
    as_json: JsonFlag = False,
):
    """Send an event to a run: a wait for it (ctx.step.waitForEvent) resumes the run."""
    api, _ = signed_in()
    sent = api.call(
        "POST", f"/runs/{run}/events", {"name": name, "payload": json_of(stdin_or_file(data))}
    )
    emit(as_json, sent, lambda: out.print(f"Event {name} sent to run {run}."))


@schedules.command("list")
@command
def list_schedules(
    worker: Annotated[str, typer.Argument(help="The worker's name.")], as_json: JsonFlag = False
):
    """A worker's schedules."""
    api, found = signed_in_worker(worker)
    listed = api.call("GET", f"/workers/{found['id']}/schedules")

    def human():
        table = Table("Schedule", "Function", "Cron", "Zone", "Next", box=None)
        for s in listed["schedules"]:
            upcoming = "paused" if s["paused"] else (s["nextFirings"] or ["-"])[0]
            table.add_row(s["id"], s["function"], s["cron"], s["timeZone"], str(upcoming))
        out.print(table if listed["schedules"] else "No schedules.")

    emit(as_json, listed, human)


@schedules.command("add")
@command
def add_schedule(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    function: Annotated[str, typer.Argument(help="The function each run calls.")],
    cron: Annotated[str, typer.Argument(help='Five fields, e.g. "0 * * * *".')],
    time_zone: Annotated[str, typer.Option("--time-zone", help="e.g. Europe/Berlin.")] = "UTC",
    data: Annotated[str, typer.Option(help="The JSON payload, @file or @-.")] = "null",
    as_json: JsonFlag = False,
):
    """Call a function on a schedule (each firing a durable run)."""
    api, found = signed_in_worker(worker)
    body = {
        "function": function,
        "cron": cron,
        "timeZone": time_zone,
        "payload": json_of(stdin_or_file(data)),
    }
    made = api.call("POST", f"/workers/{found['id']}/schedules", body)
    emit(
        as_json,
        made,
        lambda: out.print(
            f"Schedule {made['id']}: next {', '.join(map(str, made['nextFirings'][:1]))}."
        ),
    )


def set_paused(schedule: str, paused: bool, as_json: bool) -> None:
    api, _ = signed_in()
    changed = api.call("PATCH", f"/schedules/{schedule}", {"paused": paused})
    emit(
        as_json,
        changed,
        lambda: out.print(f"Schedule {short(changed['id'])} {'paused' if paused else 'resumed'}."),
    )


@schedules.command("pause")
@command
def pause_schedule(
    schedule: Annotated[str, typer.Argument(help="The schedule's id.")], as_json: JsonFlag = False
):
    """Stop firing until resumed."""
    set_paused(schedule, True, as_json)


@schedules.command("resume")
@command
def resume_schedule(
    schedule: Annotated[str, typer.Argument(help="The schedule's id.")], as_json: JsonFlag = False
):
    """Fire again."""
    set_paused(schedule, False, as_json)
