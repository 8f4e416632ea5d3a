"""The tenant's own domains: claim a name (the records to create are printed), check it,
send its paths to workers, remove it."""

from typing import Annotated

import typer
from rich.table import Table

from .api import FAILED, NOT_FOUND, Api, Failure
from .common import JsonFlag, command, emit, out, signed_in

app = typer.Typer(
    help="Your own domains: list, add, check, route, unroute, portal, remove.", no_args_is_help=True
)
Name = Annotated[str, typer.Argument(help="The hostname, such as api.example.com.")]


def domain_named(api: Api, hostname: str) -> dict:
    wanted = hostname.strip().rstrip(".").lower()
    for domain in api.call("GET", "/domains")["domains"]:
        if domain["hostname"] == wanted:
            return domain
    raise Failure(f"No domain {wanted} (see `functions domains list`).", NOT_FOUND, "not_found")


def show(domain: dict) -> None:
    state = {"verified": "[green]verified[/]", "failing": "[red]failing[/]"}.get(
        domain["status"], "[yellow]pending[/]"
    )
    out.print(f"[bold]{domain['hostname']}[/] {state}", markup=True)
    if domain["lastError"]:
        out.print(f"  {domain['lastError']}", markup=False)
    if domain["status"] != "verified":
        out.print("  Create at your DNS provider:")
        for record in domain["records"]:
            out.print(f"    {record['type']:5} {record['name']}  {record['value']}", markup=False)
    if domain.get("portal"):
        out.print(f"  Serves the portal: https://{domain['hostname']}/", markup=False)
        return
    for route in domain["routes"]:
        out.print(f"  {route['prefix']} -> {route['worker']}", markup=False)
    if not domain["routes"]:
        out.print("  No paths yet: `functions domains route <name> <worker> [--prefix /]`.")


@app.command("list")
@command
def list_domains(as_json: JsonFlag = False):
    """The tenant's domains, their state and paths."""
    api, _ = signed_in()
    listed = api.call("GET", "/domains")

    def human():
        if not listed["domains"]:
            out.print("No domains.")
            return
        table = Table("Domain", "Status", "Paths", "Last problem", box=None)
        for d in listed["domains"]:
            paths = ", ".join(f"{r['prefix']} -> {r['worker']}" for r in d["routes"]) or "-"
            table.add_row(d["hostname"], d["status"], paths, d["lastError"] or "")
        out.print(table)

    emit(as_json, listed, human)


@app.command("add")
@command
def add_domain(hostname: Name, as_json: JsonFlag = False):
    """Claim a hostname; prints the TXT record that proves it is yours."""
    api, _ = signed_in()
    made = api.call("POST", "/domains", {"hostname": hostname})
    emit(as_json, made, lambda: show(made))


@app.command("check")
@command
def check_domain(hostname: Name, as_json: JsonFlag = False):
    """Look for its record now; exit 1 while it is not verified."""
    api, _ = signed_in()
    found = api.call("POST", f"/domains/{domain_named(api, hostname)['id']}/check")
    emit(as_json, found, lambda: show(found))
    if found["status"] != "verified":
        raise typer.Exit(FAILED)


def change_routes(hostname: str, change, portal: bool = False) -> dict:
    api, _ = signed_in()
    domain = domain_named(api, hostname)
    routes = {r["prefix"]: r["worker"] for r in domain["routes"]}
    change(routes)
    body = {"routes": [{"prefix": p, "worker": w} for p, w in routes.items()], "portal": portal}
    return api.call("PUT", f"/domains/{domain['id']}/routes", body)


def as_prefix(prefix: str) -> str:
    prefix = prefix if prefix.startswith("/") else "/" + prefix
    return prefix if prefix.endswith("/") else prefix + "/"


@app.command("route")
@command
def route(
    hostname: Name,
    worker: Annotated[str, typer.Argument(help="The worker whose production serves it.")],
    prefix: Annotated[str, typer.Option(help="Paths starting with this (the longest wins).")] = "/",
    as_json: JsonFlag = False,
):
    """Send the domain's paths under PREFIX to WORKER's production."""
    changed = change_routes(hostname, lambda routes: routes.__setitem__(as_prefix(prefix), worker))
    emit(as_json, changed, lambda: show(changed))


@app.command("unroute")
@command
def unroute(
    hostname: Name,
    prefix: Annotated[str, typer.Option(help="The path prefix to stop serving.")] = "/",
    as_json: JsonFlag = False,
):
    """Stop serving the domain's paths under PREFIX."""
    changed = change_routes(hostname, lambda routes: routes.pop(as_prefix(prefix), None))
    emit(as_json, changed, lambda: show(changed))


@app.command("portal")
@command
def portal(
    hostname: Name,
    off: Annotated[bool, typer.Option("--off", help="Serve its workers' routes again.")] = False,
    as_json: JsonFlag = False,
):
    """Serve the tenant's portal, under its brand, at the domain (instead of workers)."""
    changed = change_routes(hostname, lambda routes: None, portal=not off)
    emit(as_json, changed, lambda: show(changed))


@app.command("remove")
@command
def remove(hostname: Name, as_json: JsonFlag = False):
    """Remove the domain: it stops being served within seconds."""
    api, _ = signed_in()
    domain = domain_named(api, hostname)
    api.call("DELETE", f"/domains/{domain['id']}")
    emit(
        as_json,
        {"removed": domain["hostname"]},
        lambda: out.print(f"{domain['hostname']} removed."),
    )
