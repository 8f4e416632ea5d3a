"""Deploying: a starter folder, a folder uploaded as the platform reads folders, its build
followed step by step, and production moved (promote, roll back)."""

import base64
import json
import re
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from .api import FAILED, NOT_FOUND, USAGE, Api, Failure
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
from .pack import PackError, archive, read_folder

NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TERMINAL = ("ready", "error", "canceled")


@command
def init(
    folder: Annotated[Path, typer.Argument(help="Where to create it (made if missing).")] = Path(
        "."
    ),
    as_json: JsonFlag = False,
):
    """A starter worker: an entry module, package.json and a test."""
    name = worker_name_of(folder.resolve().name)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for file in ("index.ts", "index_test.ts", "package.json"):
        target = folder / file
        if target.exists():
            raise Failure(
                f"{target} exists already: init writes only into new files.", USAGE, "exists"
            )
        text = resources.files("functions_cli").joinpath(f"starter/{file}").read_text()
        target.write_text(text.replace('"NAME"', json.dumps(name)))
        made.append(str(target))
    emit(
        as_json,
        {"files": made, "worker": name},
        lambda: out.print(f"Made {', '.join(made)}. Deploy it with `functions deploy {folder}`."),
    )


def worker_name_of(text: str) -> str:
    """A folder's or package's name as a worker name (lowercase letters, digits, hyphens)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:30].strip("-")
    return cleaned or "worker"


def name_for(folder: Path, files: dict[str, str], given: str | None) -> str:
    if given:
        if not NAME.match(given) or len(given) > 30:
            raise Failure(
                f"{given!r} cannot name a worker: lowercase letters, digits and single hyphens, at most 30.",
                USAGE,
                "invalid_name",
            )
        return given
    try:
        declared = json.loads(files.get("package.json", "{}")).get("name")
    except ValueError:
        declared = None
    if isinstance(declared, str) and declared:
        return worker_name_of(declared.split("/")[-1])
    return worker_name_of(folder.resolve().name)


def follow_build(api: Api, deployment: dict, quiet: bool) -> dict:
    """Polls the deployment until its build ends, showing each step as it starts."""
    seen = None
    with err.status("Queued…") as status:
        while deployment["status"] not in TERMINAL:
            step = deployment.get("buildStep") or deployment["status"].capitalize()
            if step != seen and not quiet:
                if seen is not None:
                    err.print(f"  [green]✓[/] {seen}", markup=True)
                status.update(f"{step}…")
                seen = step
            time.sleep(0.3)
            deployment = api.call("GET", f"/deployments/{deployment['id']}")
    if seen is not None and not quiet and deployment["status"] == "ready":
        err.print(f"  [green]✓[/] {seen}", markup=True)
    return deployment


def problems_text(deployment: dict, files: dict[str, str]) -> list[str]:
    """Each problem as file:line:col, the message, and the line of the tenant's own file."""
    shown = []
    for problem in deployment.get("problems") or []:
        where = f"{problem['file']}:{problem['line']}:{problem['column']}"
        shown.append(f"{where}: {problem['message']}")
        lines = files.get(problem["file"], "").splitlines()
        if 0 < problem["line"] <= len(lines):
            shown.append(f"    {lines[problem['line'] - 1]}")
            shown.append("    " + " " * max(problem["column"] - 1, 0) + "^")
    return shown


@command
def deploy(
    folder: Annotated[Path, typer.Argument(help="The worker's folder.")] = Path("."),
    worker: Annotated[
        str | None,
        typer.Option(help="The worker's name (default: package.json's name, or the folder's)."),
    ] = None,
    promote: Annotated[
        bool, typer.Option(help="--no-promote: when ready it stays a preview.")
    ] = True,
    wait: Annotated[
        bool, typer.Option(help="--no-wait: answer once the upload is accepted.")
    ] = True,
    as_json: JsonFlag = False,
):
    """Deploy a folder: upload it, follow the build, print the URL (exit 1 if it fails)."""
    try:
        files = read_folder(folder)
    except PackError as exc:
        raise Failure(str(exc), USAGE, "unreadable_folder") from exc
    api, signed = signed_in()
    name = name_for(folder, files, worker)
    body = {"name": name, "archive": base64.b64encode(archive(files)).decode(), "promote": promote}
    if signed.tenant:
        body["tenant"] = signed.tenant
    if not as_json:
        err.print(
            f"Deploying {len(files)} file{'s' if len(files) != 1 else ''} of {folder} as [bold]{name}[/]…",
            markup=True,
        )
    created = api.call("POST", "/workers", body)
    deployment = created["deployment"]
    if wait:
        deployment = follow_build(api, deployment, quiet=as_json)
    result = {
        "worker": {k: created[k] for k in ("id", "name", "tenant", "url")},
        "deployment": deployment,
    }
    if deployment["status"] == "ready":
        live = api.call("GET", f"/workers/{created['id']}")
        result["production"] = (live.get("production") or {}).get("id") == deployment["id"]

    def human():
        if deployment["status"] == "ready":
            out.print(f"Ready: {short(deployment['id'])} answers at {deployment['url']}")
            if result["production"]:
                out.print(f"Production: {created['url']}")
            else:
                out.print(
                    f"A preview; production is unchanged. Promote it with `functions promote {name} {short(deployment['id'])}`."
                )
        elif deployment["status"] in TERMINAL:
            message = deployment.get("errorMessage") or ""
            if deployment.get("problems"):
                message = message.splitlines()[0]  # each problem follows, in its own file
            verb = "failed" if deployment["status"] == "error" else "was canceled"
            out.print(f"The build {verb}: {message}".rstrip(), markup=False)
            for line in problems_text(deployment, files):
                out.print(line, markup=False)
        else:
            out.print(
                f"Accepted: {short(deployment['id'])} is {deployment['status']}; `functions status {name}` follows it."
            )

    emit(as_json, result, human)
    if deployment["status"] in ("error", "canceled"):
        raise typer.Exit(FAILED)


def deployment_of(api: Api, worker: dict, given: str) -> dict:
    """A deployment of the worker by its id or the start of it (as `functions deployments` shows)."""
    found = [
        d
        for d in api.call("GET", f"/workers/{worker['id']}/deployments")["deployments"]
        if d["id"].startswith(given)
    ]
    if len(found) != 1:
        raise Failure(
            f"{'No' if not found else 'More than one'} deployment of {worker['name']} starts with {given}.",
            NOT_FOUND if not found else USAGE,
            "not_found",
        )
    return found[0]


def set_production(api: Api, worker: dict, deployment: dict, as_json: bool, how: str) -> None:
    answer = api.call("POST", f"/workers/{worker['id']}/production", {"id": deployment["id"]})
    emit(
        as_json,
        answer,
        lambda: out.print(
            f"{how} {worker['name']}: production serves {short(deployment['id'])} now ({answer['url']})."
        ),
    )


@command
def promote(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    deployment: Annotated[str, typer.Argument(help="A ready deployment's id, or its start.")],
    as_json: JsonFlag = False,
):
    """Make a ready deployment production."""
    api, found = signed_in_worker(worker)
    set_production(api, found, deployment_of(api, found, deployment), as_json, "Promoted")


@command
def rollback(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    deployment: Annotated[
        str | None, typer.Argument(help="Which one (default: the ready one before production).")
    ] = None,
    as_json: JsonFlag = False,
):
    """Put an earlier deployment back in production."""
    api, found = signed_in_worker(worker)
    if deployment:
        target = deployment_of(api, found, deployment)
    else:
        current = (found.get("production") or {}).get("id")
        listed = api.call("GET", f"/workers/{found['id']}/deployments")["deployments"]
        ids = [d["id"] for d in listed]
        older = listed[ids.index(current) + 1 :] if current in ids else []
        target = next((d for d in older if d["status"] == "ready"), None)
        if target is None:
            raise Failure(
                f"{worker} has no ready deployment before production to roll back to.",
                NOT_FOUND,
                "nothing_to_roll_back_to",
            )
    set_production(api, found, target, as_json, "Rolled back")
