"""Signing in: the CLI asks the platform for a key, a member approves it in the portal, and
the key lands in the config file (mode 600)."""

import socket
import time
import webbrowser
from datetime import datetime
from typing import Annotated

import typer

from . import __version__, config
from .api import FAILED, REFUSED, Api, Failure
from .common import JsonFlag, command, emit, err, out


@command
def login(
    url: Annotated[
        str,
        typer.Option(
            help="The platform's address, e.g. https://functions.example.com.",
            envvar="FUNCTIONS_URL",
        ),
    ] = "",
    browser: Annotated[bool, typer.Option(help="Open the approval page in a browser.")] = True,
    as_json: JsonFlag = False,
):
    """Sign in: approve this CLI in the portal; its key is saved for later commands."""
    url = (url or config.read().get("url") or "").rstrip("/")
    api = Api(url)
    client = f"functions {__version__} on {socket.gethostname()}"[:100]
    asked = api.call("POST", "/cli/logins", {"client": client})
    err.print(f"To sign in, open [bold]{asked['approveUrl']}[/]", markup=True)
    err.print(f"and check that it shows the code [bold]{asked['code']}[/].", markup=True)
    if browser:
        webbrowser.open(asked["approveUrl"])
    deadline = datetime.fromisoformat(asked["expiresAt"]).timestamp()
    with err.status("Waiting for approval…"):
        while time.time() < deadline:
            time.sleep(asked["interval"])
            answer = api.call("POST", "/cli/logins/poll", {"pollToken": asked["pollToken"]})
            if answer["status"] == "approved":
                break
            if answer["status"] in ("denied", "collected", "expired"):
                raise Failure(
                    f"The sign-in was {answer['status']}; run `functions login` again.",
                    REFUSED,
                    answer["status"],
                )
        else:
            raise Failure(
                "Nobody approved the sign-in within 10 minutes; run `functions login` again.",
                FAILED,
                "expired",
            )
    where = config.save(url, answer["token"], answer["tenant"], answer["scopes"])
    result = {
        "url": url,
        "tenant": answer["tenant"],
        "scopes": answer["scopes"],
        "config": str(where),
    }
    emit(
        as_json,
        result,
        lambda: out.print(
            f"Signed in to {url} in tenant {answer['tenant']} ({', '.join(answer['scopes'])}); the key is in {where} (readable by you only)."
        ),
    )


@command
def logout(as_json: JsonFlag = False):
    """Forget the saved key (revoke it in the portal, under API keys, to end it everywhere)."""
    forgot = config.forget()
    emit(
        as_json,
        {"forgotten": forgot},
        lambda: out.print(f"Signed out: {config.path()} removed." if forgot else "Not signed in."),
    )
