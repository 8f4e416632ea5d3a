"""Key-value namespaces: create, list, empty and remove them, browse and change their keys, and
bind them to workers (ctx.kv.<BINDING> in code, from the worker's next deployment on)."""

import base64
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .api import NOT_FOUND, USAGE, Failure
from .common import JsonFlag, command, emit, out, signed_in, signed_in_worker

app = typer.Typer(
    help="Key-value namespaces: create, keys, get, put, delete, bind.", no_args_is_help=True
)
Name = Annotated[str, typer.Argument(help="The namespace's name.")]
Key = Annotated[str, typer.Argument(help="The key (at most 512 characters).")]


def namespace_named(api, name: str) -> dict:
    for ns in api.call("GET", "/kv/namespaces")["namespaces"]:
        if ns["name"] == name:
            return ns
    raise Failure(f"No namespace named {name}: `functions kv namespaces` lists them.", NOT_FOUND)


@app.command("namespaces")
@command
def list_namespaces(as_json: JsonFlag = False):
    """The tenant's namespaces, who binds them, and what they hold."""
    api, _ = signed_in()
    listed = api.call("GET", "/kv/namespaces")

    def human():
        if not listed["namespaces"]:
            out.print("No namespaces: `functions kv create NAME` makes one.")
            return
        table = Table("Namespace", "Bound by", box=None)
        for ns in listed["namespaces"]:
            bound = ", ".join(f"{b['worker']} as {b['binding']}" for b in ns["boundBy"])
            table.add_row(ns["name"], bound or "-")
        out.print(table)
        out.print(f"{listed['keys']} keys, {listed['bytes']} bytes in all.", style="dim")

    emit(as_json, listed, human)


@app.command("create")
@command
def create(name: Name, as_json: JsonFlag = False):
    """Create a namespace."""
    api, _ = signed_in()
    made = api.call("POST", "/kv/namespaces", {"name": name})
    emit(as_json, made, lambda: out.print(f"Namespace {name} created."))


@app.command("remove")
@command
def remove(name: Name, as_json: JsonFlag = False):
    """Remove a namespace and everything in it (unbind it first)."""
    api, _ = signed_in()
    api.call("DELETE", f"/kv/namespaces/{namespace_named(api, name)['id']}")
    emit(as_json, {"removed": name}, lambda: out.print(f"Namespace {name} removed."))


@app.command("empty")
@command
def empty(name: Name, as_json: JsonFlag = False):
    """Delete every key of a namespace."""
    api, _ = signed_in()
    done = api.call("POST", f"/kv/namespaces/{namespace_named(api, name)['id']}/empty")
    emit(as_json, done, lambda: out.print(f"{done['removed']} keys deleted from {name}."))


@app.command("keys")
@command
def keys(
    name: Name,
    prefix: Annotated[str, typer.Option(help="Only keys that start with this.")] = "",
    limit: Annotated[int, typer.Option(help="Keys per page (1-1000).")] = 100,
    cursor: Annotated[str, typer.Option(help="The page after this cursor.")] = "",
    as_json: JsonFlag = False,
):
    """Keys by prefix, a page at a time, with size, version and expiry."""
    api, _ = signed_in()
    page = api.call(
        "GET",
        f"/kv/namespaces/{namespace_named(api, name)['id']}/keys",
        params={"prefix": prefix, "limit": limit, "cursor": cursor},
    )

    def human():
        table = Table("Key", "Bytes", "Version", "Expires", box=None)
        for k in page["keys"]:
            table.add_row(k["key"], str(k["size"]), str(k["version"]), k["expiresAt"] or "-")
        out.print(table)
        if page["cursor"]:
            out.print(f"More: --cursor {page['cursor']}", style="dim", markup=False)

    emit(as_json, page, human)


@app.command("get")
@command
def get(name: Name, key: Key, as_json: JsonFlag = False):
    """Print a key's value (its bytes as they are); with --json, its metadata and version too."""
    api, _ = signed_in()
    found = api.call(
        "GET", f"/kv/namespaces/{namespace_named(api, name)['id']}/value", params={"key": key}
    )
    if as_json:
        print(json.dumps(found, indent=2))
    elif found["encoding"] == "base64":
        sys.stdout.buffer.write(base64.b64decode(found["value"]))
    else:
        print(found["value"])


@app.command("put")
@command
def put(
    name: Name,
    key: Key,
    value: Annotated[str, typer.Argument(help="The value (text); or use --file.")] = "",
    file: Annotated[Path | None, typer.Option(help="Store this file's bytes.")] = None,
    ttl: Annotated[float | None, typer.Option(help="Seconds until it expires.")] = None,
    metadata: Annotated[str, typer.Option(help="JSON kept beside the value.")] = "",
    if_version: Annotated[
        int | None, typer.Option(help="Only if the key is at this version (0: not there).")
    ] = None,
    as_json: JsonFlag = False,
):
    """Write a key (text, or a file's bytes)."""
    api, _ = signed_in()
    body: dict = {"ttlSeconds": ttl, "ifVersion": if_version}
    if file is not None:
        body.update(value=base64.b64encode(file.read_bytes()).decode(), encoding="base64")
    else:
        body.update(value=value, encoding="utf-8")
    if metadata:
        try:
            body["metadata"] = json.loads(metadata)
        except ValueError:
            raise Failure("--metadata is not JSON.", USAGE) from None
    path = f"/kv/namespaces/{namespace_named(api, name)['id']}/value"
    written = api.call("PUT", path, body, params={"key": key})
    emit(as_json, written, lambda: out.print(f"{key} written (version {written['version']})."))


@app.command("delete")
@command
def delete(name: Name, key: Key, as_json: JsonFlag = False):
    """Delete a key."""
    api, _ = signed_in()
    path = f"/kv/namespaces/{namespace_named(api, name)['id']}/value"
    api.call("DELETE", path, params={"key": key})
    emit(as_json, {"deleted": key}, lambda: out.print(f"{key} deleted."))


@app.command("bind")
@command
def bind(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    binding: Annotated[str, typer.Argument(help="The name in code: ctx.kv.BINDING.")],
    name: Name,
    as_json: JsonFlag = False,
):
    """Bind a namespace to a worker; its next deployment reaches it as ctx.kv.BINDING."""
    api, found = signed_in_worker(worker)
    ns = namespace_named(api, name)
    made = api.call("PUT", f"/workers/{found['id']}/kv-bindings/{binding}", {"namespace": ns["id"]})
    emit(as_json, made, lambda: out.print(
        f"{worker} reaches {name} as ctx.kv.{binding} from its next deployment."))  # fmt: skip


@app.command("unbind")
@command
def unbind(
    worker: Annotated[str, typer.Argument(help="The worker's name.")],
    binding: Annotated[str, typer.Argument(help="The binding's name.")],
    as_json: JsonFlag = False,
):
    """Unbind; the worker's next deployment no longer reaches it."""
    api, found = signed_in_worker(worker)
    api.call("DELETE", f"/workers/{found['id']}/kv-bindings/{binding}")
    emit(as_json, {"unbound": binding}, lambda: out.print(
        f"ctx.kv.{binding} unbound from {worker} (from its next deployment)."))  # fmt: skip
