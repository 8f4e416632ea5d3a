"""Events out to the tenant's own systems: subscribe a URL (its signing secret is printed
once), try it with a ping, resume a paused one, remove it; see deliveries with the answers
they got and send one again."""

from typing import Annotated

import typer
from rich.table import Table

from .api import NOT_FOUND, USAGE, Api, Failure
from .common import JsonFlag, command, emit, out, signed_in

app = typer.Typer(
    help="Events sent to your URLs: list, add, ping, resume, remove, deliveries, redeliver.",
    no_args_is_help=True,
)
Target = Annotated[str, typer.Argument(help="The subscription's URL, or its id.")]


def subscription_named(api: Api, target: str) -> dict:
    """A subscription by id or by URL (a URL subscribed twice must be named by id)."""
    listed = api.call("GET", "/events/subscriptions")["subscriptions"]
    found = [s for s in listed if target in (s["id"], s["url"])]
    if len(found) > 1:
        raise Failure(
            f"{target} is subscribed {len(found)} times: name one by its id.", USAGE, "ambiguous"
        )
    if not found:
        raise Failure(
            f"No subscription {target} (see `functions events list`).", NOT_FOUND, "not_found"
        )
    return found[0]


def show_delivery(d: dict) -> None:
    answer = f"HTTP {d['statusCode']}" if d["statusCode"] else (d["error"] or "no answer yet")
    out.print(
        f"{d['id']}  {d['event']['type']}  {d['status']} after {d['attempts']} attempt(s): "
        f"{answer}",
        markup=False,
    )


@app.command("list")
@command
def list_subscriptions(as_json: JsonFlag = False):
    """The subscriptions, what each receives and how delivery goes."""
    api, _ = signed_in()
    listed = api.call("GET", "/events/subscriptions")

    def human():
        if not listed["subscriptions"]:
            out.print("No subscriptions: `functions events add <url>`.")
            return
        table = Table("Id", "URL", "Events", "Status", "Failures", "Last problem", box=None)
        for s in listed["subscriptions"]:
            table.add_row(s["id"], s["url"], ", ".join(s["types"]) or "all", s["status"],
                          str(s["failures"]), s["lastError"] or "")  # fmt: skip
        out.print(table)

    emit(as_json, listed, human)


@app.command("add")
@command
def add(
    url: Annotated[str, typer.Argument(help="Where to POST each event (a public address).")],
    types: Annotated[
        list[str] | None,
        typer.Option("--type", help="An event type to receive (repeat it); none for all."),
    ] = None,
    as_json: JsonFlag = False,
):
    """Send the tenant's events to URL; prints the secret that signs them, once."""
    api, _ = signed_in()
    made = api.call("POST", "/events/subscriptions", {"url": url, "types": types or []})

    def human():
        out.print(f"Subscribed {made['url']} ({', '.join(made['types']) or 'every event'}).")
        out.print(f"Signing secret (shown only now): {made['secret']}", markup=False)
        out.print("Try it: functions events ping " + made["id"], markup=False)

    emit(as_json, made, human)


@app.command("ping")
@command
def ping(target: Target, as_json: JsonFlag = False):
    """Send a `ping` event to this subscription only."""
    api, _ = signed_in()
    sent = api.call("POST", f"/events/subscriptions/{subscription_named(api, target)['id']}/ping")
    emit(as_json, sent, lambda: show_delivery(sent))


@app.command("resume")
@command
def resume(target: Target, as_json: JsonFlag = False):
    """Deliver again to a paused subscription (what waited is sent)."""
    api, _ = signed_in()
    found = subscription_named(api, target)
    resumed = api.call("POST", f"/events/subscriptions/{found['id']}/resume")
    emit(as_json, resumed, lambda: out.print(f"{resumed['url']}: {resumed['status']}."))


@app.command("remove")
@command
def remove(target: Target, as_json: JsonFlag = False):
    """Stop sending events to this subscription (its deliveries go with it)."""
    api, _ = signed_in()
    found = subscription_named(api, target)
    api.call("DELETE", f"/events/subscriptions/{found['id']}")
    emit(as_json, {"removed": found["id"]}, lambda: out.print(f"Removed {found['url']}."))


@app.command("deliveries")
@command
def deliveries(
    target: Annotated[str | None, typer.Argument(help="Only this subscription's.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonFlag = False,
):
    """Deliveries, newest first, with what each URL answered."""
    api, _ = signed_in()
    params: dict = {"limit": limit}
    if target:
        params["subscription"] = subscription_named(api, target)["id"]
    if status:
        params["status"] = status
    listed = api.call("GET", "/events/deliveries", params=params)

    def human():
        if not listed["deliveries"]:
            out.print("No deliveries.")
            return
        table = Table("Id", "Event", "URL", "Status", "Tries", "Answer", box=None)
        for d in listed["deliveries"]:
            answer = str(d["statusCode"] or d["error"] or "")
            table.add_row(d["id"], d["event"]["type"], d["url"], d["status"],
                          str(d["attempts"]), answer)  # fmt: skip
        out.print(table)

    emit(as_json, listed, human)


@app.command("redeliver")
@command
def redeliver(
    delivery: Annotated[str, typer.Argument(help="The delivery's id (from `deliveries`).")],
    as_json: JsonFlag = False,
):
    """Send a delivery's event again at once (receivers see the same webhook-id)."""
    api, _ = signed_in()
    sent = api.call("POST", f"/events/deliveries/{delivery}/redeliver")
    emit(as_json, sent, lambda: show_delivery(sent))
