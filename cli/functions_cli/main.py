"""The `functions` command: its commands, gathered from the modules that hold them."""

import typer

from . import (
    __version__,
    account,
    calling,
    deploying,
    dev,
    domains,
    events,
    kv,
    plain_settings,
    reading,
    secrets,
)

app = typer.Typer(
    name="functions",
    help="Deploy, follow, call, promote and roll back workers from your machine or CI. "
    "Exit codes: 0 done, 1 failed, 2 wrong command line, 3 not signed in or not allowed, "
    "4 not found, 5 platform unreachable, 6 refused for now (quota, conflict).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(account.login)
app.command()(account.logout)
app.command()(deploying.init)
app.command()(deploying.deploy)
app.command("list")(reading.list_workers)
app.command()(reading.status)
app.command()(reading.deployments)
app.command()(deploying.promote)
app.command()(deploying.rollback)
app.command()(dev.dev)
app.command()(calling.invoke)
app.command()(reading.logs)
app.add_typer(calling.runs, name="runs")
app.add_typer(calling.schedules, name="schedules")
app.add_typer(secrets.app, name="secrets")
app.add_typer(plain_settings.app, name="settings")
app.add_typer(domains.app, name="domains")
app.add_typer(kv.app, name="kv")
app.add_typer(events.app, name="events")


def version(shown: bool) -> None:
    if shown:
        print(f"functions {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: bool = typer.Option(
        False, "--version", callback=version, is_eager=True, help="Print the version."
    ),
):
    """Deploy, follow, call, promote and roll back workers from your machine or CI."""


def run() -> None:
    app()
