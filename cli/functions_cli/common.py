"""What every command shares: the signed-in client, finding a worker by name, and output
that is for people (Rich, on the terminal) or for scripts (`--json`, one document)."""

import functools
import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from . import config
from .api import NOT_FOUND, REFUSED, Api, Failure

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for scripts.")]


def command(function):
    """A command whose Failure ends it with its message and exit code (as JSON with --json)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Failure as failure:
            if kwargs.get("as_json"):
                print(json.dumps({"error": {"code": failure.code, "message": failure.message}}))
            else:
                err.print(f"[bold red]Error:[/] {failure.message}", markup=True)
            raise typer.Exit(failure.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def signed_in() -> tuple[Api, config.SignIn]:
    found = config.load()
    if found is None:
        raise Failure(
            "Not signed in: run `functions login --url <platform URL>`, or set FUNCTIONS_URL "
            "and FUNCTIONS_TOKEN (an API key).",
            REFUSED,
            "not_signed_in",
        )
    return Api(found.url, found.token), found


def worker_named(api: Api, name: str) -> dict:
    found = api.call("GET", "/workers", params={"name": name})["workers"]
    if not found:
        raise Failure(f"No worker named {name} (see `functions list`).", NOT_FOUND, "not_found")
    return found[0]


def signed_in_worker(name: str) -> tuple[Api, dict]:
    """What most commands start with: the signed-in client and the worker they name."""
    api, _ = signed_in()
    return api, worker_named(api, name)


def emit(as_json: bool, data, human) -> None:
    """The answer: `data` as JSON with --json, else what `human()` prints."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        human()


def short(deployment_id: str | None) -> str:
    return (deployment_id or "")[:8]


def stdin_or_file(value: str) -> str:
    """`@file` reads a file, `@-` standard input, anything else is the value itself."""
    if value == "@-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as file:
                return file.read()
        except OSError as exc:
            raise Failure(f"Cannot read {value[1:]}: {exc.strerror}.", 2, "unreadable") from exc
    return value
