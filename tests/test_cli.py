"""The `functions` CLI, installed from the platform itself into a fresh virtual environment,
driven as a developer would against a running platform (uvicorn, Celery, Deno): signed in by
approval in the portal, a folder of two files deployed with its build's steps shown, its
lines followed while it is called, a type error shown in the tenant's own file, a preview
promoted and rolled back, and exit codes a CI job can trust."""

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from runs.models import Run, Step
from workers.models import ApiKey, Worker

from .conftest import form_post, free_port, portal_session, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "functions-platform"

GREET = "export function greet(name: string): string {\n  return `Hello, ${name}!`;\n}\n"
INDEX = (
    'import { greet } from "./lib/greet.ts";\n\n'
    "export async function hello(payload: { name?: string }) {\n"
    '  console.log(`greeting ${payload?.name ?? "world"}`);\n'
    '  return { greeting: greet(payload?.name ?? "world") };\n'
    "}\n"
)


@pytest.fixture(scope="session")
def cli(tmp_path_factory, asgi_server):
    """`pip install <platform>/cli/<package>` into a new virtual environment, as the CLI page
    says; the path of the `functions` it installs."""
    from portal.cli import package

    home = tmp_path_factory.mktemp("cli")
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    name, _ = package()
    url = f"{asgi_server}/cli/{name}"
    pip = str(home / "venv/bin/pip")
    # The package comes from the platform every time; what it depends on (and what builds
    # it) is downloaded once per set of declared dependencies and kept between clones, as
    # pip keeps its own cache, so the test does not wait on the package index each run.
    found = wheels(pip, url)
    install = [pip, "install", "--quiet", "--no-index", "--find-links", str(found), url]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return home / "venv/bin/functions"


def wheels(pip: str, url: str) -> Path:
    """The CLI's dependencies and build requirements as files, for an install that asks no
    index; made again when cli/pyproject.toml changes."""
    pyproject = ROOT / "cli/pyproject.toml"
    key = hashlib.sha256(pyproject.read_bytes()).hexdigest()[:16]
    folder = CACHE / "cli-wheels" / key
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    build = tomllib.loads(pyproject.read_text())["build-system"]["requires"]
    for what in ([url], build):
        got = subprocess.run([pip, "download", "--quiet", "--dest", str(folder), *what],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert got.returncode == 0, got.stderr
    for own in folder.glob("functions_cli-*"):
        own.unlink()  # (the package itself always comes from the platform)
    (folder / ".complete").touch()
    return folder


def run(cli, home: Path, *args, check_code: int | None = 0, **kwargs):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "FUNCTIONS_CONFIG": str(home / "config.json"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(cli), *args], capture_output=True, text=True, timeout=180, env=env, **kwargs
    )
    if check_code is not None:
        assert done.returncode == check_code, (args, done.stdout, done.stderr)
    return done


def sign_in(cli, home: Path, url: str, username: str) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(home),
           "FUNCTIONS_CONFIG": str(home / "config.json")}  # fmt: skip
    login = subprocess.Popen(
        [str(cli), "login", "--url", url, "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    told = ""
    while "code" not in told or "." not in told.split("code", 1)[1]:
        told += login.stderr.readline()
    code = told.split("the code", 1)[1].split()[0].strip(".")
    approve_url = told.split("open", 1)[1].split()[0]
    assert approve_url.endswith(f"?code={code}")
    browser = portal_session(url, username)
    page = browser.get(f"/cli/approve/?code={code}")
    assert code in page.text
    form_post(browser, "/cli/approve/", {"code": code, "tenant": "acme",
              "scopes": ["deploy", "invoke", "read", "manage"], "decision": "approve"})  # fmt: skip
    stdout, stderr = login.communicate(timeout=30)
    assert login.returncode == 0, stderr
    assert "Signed in" in stdout and "acme" in stdout


def start_dev(cli, home: Path, folder: Path, port: int, *args: str, saying: str = ""):
    """`functions dev FOLDER` started and serving, and having said `saying` (a line it
    prints a moment after it serves); the process and what it said so far."""
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "COLUMNS": "200",
        "FUNCTIONS_CONFIG": str(home / "config.json"),
        # A developer's machine: its CA bundles and proxies, and Deno's cache of packages (and
        # of its bundler) from earlier work (the platform's, here).
        **{k: v for k, v in os.environ.items() if "CERT" in k or "PROXY" in k.upper()},
        "DENO_DIR": str(settings.DENO_DIR),
    }  # fmt: skip
    dev = subprocess.Popen(
        [str(cli), "dev", str(folder), "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    said: list[str] = []
    threading.Thread(target=lambda: said.extend(iter(dev.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: any("Serving " in line and " at " in line for line in said), 60,
                 "functions dev to serve")  # fmt: skip
        wait_for(
            lambda: any(saying in line for line in said), 15, f"functions dev to say {saying!r}"
        )
    except AssertionError as waited:
        dev.kill()
        raise AssertionError(f"{waited}; it said:\n{''.join(said)}") from None
    return dev, said


def test_the_cli_journey(cli, asgi_server, runtime, start_worker, tmp_path, owner, tenant):
    start_worker()
    home = tmp_path
    # Not signed in: said, with exit code 3.
    refused = run(cli, home, "list", check_code=3)
    assert "Not signed in" in refused.stderr
    sign_in(cli, home, asgi_server, owner.username)
    config = home / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert ApiKey.objects.get(member=owner).scopes == ["deploy", "invoke", "manage", "read"]

    # A starter, made into a program of two files, deployed with its steps shown.
    folder = home / "hello"
    run(cli, home, "init", str(folder))
    (folder / "lib").mkdir()
    (folder / "lib/greet.ts").write_text(GREET)
    # A program never built before (a build of the same files is reused, steps and all).
    (folder / "index.ts").write_text(INDEX + f"// {uuid.uuid4()}\n")
    (folder / ".env").write_text("TOKEN=local-only\n")  # never uploaded
    first = run(cli, home, "deploy", str(folder))
    assert "Type-checking" in first.stderr and "Ready:" in first.stdout
    assert "Production: http://hello--acme." in first.stdout
    worker = Worker.objects.get(tenant=tenant, name="hello")
    deployed = worker.production
    assert set(deployed.files) == {"index.ts", "index_test.ts", "lib/greet.ts", "package.json"}

    # Called, with its console lines on stderr and its result on stdout.
    called = run(cli, home, "invoke", "hello", "hello", "--data", '{"name": "cli"}')
    assert json.loads(called.stdout) == {"greeting": "Hello, cli!"}
    assert "greeting cli" in called.stderr

    # Its lines followed live while it is called again.
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "FUNCTIONS_CONFIG": str(config)}
    follow = subprocess.Popen(
        [str(cli), "logs", "hello", "--follow", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        time.sleep(1.5)  # the stream is open
        run(cli, home, "invoke", "hello", "hello", "--data", '{"name": "follower"}')
        line = json.loads(follow.stdout.readline())
        while "follower" not in line["message"]:
            line = json.loads(follow.stdout.readline())
        assert line["message"] == "greeting follower" and line["function"] == "hello"
    finally:
        follow.terminate()
        follow.wait(10)

    # A type error in the second file: exit 1, the problem in the tenant's own file and line.
    (folder / "lib/greet.ts").write_text(GREET.replace("`Hello, ${name}!`", "name.length"))
    broken = run(cli, home, "deploy", str(folder), check_code=1)
    assert "lib/greet.ts:2:3: TS2322" in broken.stdout
    assert "    return name.length;" in broken.stdout
    worker.refresh_from_db()
    assert worker.production == deployed  # production kept serving

    # A preview, promoted, then rolled back.
    (folder / "lib/greet.ts").write_text(GREET.replace("Hello", "Hi"))
    preview = json.loads(run(cli, home, "deploy", str(folder), "--no-promote", "--json").stdout)
    assert preview["deployment"]["status"] == "ready" and preview["production"] is False
    new_id = preview["deployment"]["id"]
    listed = json.loads(run(cli, home, "deployments", "hello", "--json").stdout)
    assert [d["id"] for d in listed["deployments"]][0] == new_id
    run(cli, home, "promote", "hello", new_id[:8])
    hi = run(cli, home, "invoke", "hello", "hello", "--data", '{"name": "x"}', "--json")
    assert json.loads(hi.stdout)["result"] == {"greeting": "Hi, x!"}
    back = run(cli, home, "rollback", "hello")
    assert f"production serves {str(deployed.code)[:8]}" in back.stdout
    status = json.loads(run(cli, home, "status", "hello", "--json").stdout)
    assert status["production"]["id"] == str(deployed.code)

    # Secrets: set from standard input, listed by name, never printed back, removed.
    run(cli, home, "secrets", "set", "hello", "API_TOKEN", "--value", "@-", input="tok-123")
    secrets = run(cli, home, "secrets", "list", "hello")
    assert "API_TOKEN" in secrets.stdout and "tok-123" not in secrets.stdout + secrets.stderr
    assert "not in production yet" in secrets.stdout
    run(cli, home, "secrets", "unset", "hello", "API_TOKEN")
    assert "No secrets" in run(cli, home, "secrets", "list", "hello").stdout
    # Plain settings: values shown.
    run(cli, home, "settings", "set", "hello", "FEATURE_X", "beta")
    shown = json.loads(run(cli, home, "settings", "list", "hello", "--json").stdout)
    assert [(s["name"], s["value"]) for s in shown["settings"]] == [("FEATURE_X", "beta")]
    run(cli, home, "settings", "unset", "hello", "FEATURE_X")
    # Key-value: a namespace, a value with metadata, its keys, a binding, and the errors.
    run(cli, home, "kv", "create", "cache")
    run(cli, home, "kv", "put", "cache", "user:1", "Ann", "--ttl", "3600", "--metadata", '{"v": 1}')
    assert run(cli, home, "kv", "get", "cache", "user:1").stdout == "Ann\n"
    listed = json.loads(run(cli, home, "kv", "keys", "cache", "--prefix", "user:", "--json").stdout)
    assert [(k["key"], k["metadata"], k["version"]) for k in listed["keys"]] == [
        ("user:1", {"v": 1}, 1)
    ]
    stale = run(cli, home, "kv", "put", "cache", "user:1", "Bo", "--if-version", "0", check_code=6)
    assert "version 1" in stale.stderr
    run(cli, home, "kv", "bind", "hello", "CACHE", "cache")
    bound = json.loads(run(cli, home, "kv", "namespaces", "--json").stdout)["namespaces"]
    assert bound[0]["boundBy"] == [{"worker": "hello", "binding": "CACHE"}]
    assert "unbind it first" in run(cli, home, "kv", "remove", "cache", check_code=6).stderr
    run(cli, home, "kv", "delete", "cache", "user:1")
    run(cli, home, "kv", "get", "cache", "user:1", check_code=4)
    run(cli, home, "kv", "unbind", "hello", "CACHE")
    run(cli, home, "kv", "remove", "cache")

    # Lists and runs, and the exit codes of what is not there or not allowed.
    names = [w["name"] for w in json.loads(run(cli, home, "list", "--json").stdout)["workers"]]
    assert names == ["hello"]
    assert json.loads(run(cli, home, "runs", "list", "hello", "--json").stdout)["runs"] == []
    # A run parked on a wait (as its code would leave it): shown with its steps, and woken.
    waiting = Run.objects.create(tenant=tenant, worker=worker, deployment=worker.production,
                                 function="hello", status="waiting")  # fmt: skip
    Step.objects.create(run=waiting, name="approved", kind="wait", status="parked",
                        event="approved", until="2030-01-01T00:00:00Z")  # fmt: skip
    shown = run(cli, home, "runs", "show", str(waiting.code)).stdout
    assert "wait  approved: parked until 2030-01-01" in shown and "waiting for approved" in shown
    run(cli, home, "runs", "event", str(waiting.code), "approved", "--data", '{"ok": true}')
    assert waiting.events.get().payload == '{"ok": true}'
    assert Run.objects.get(pk=waiting.pk).status != "waiting"
    missing = run(cli, home, "status", "nobody", "--json", check_code=4)
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    failing = run(cli, home, "invoke", "hello", "nope", check_code=1)
    assert "nope" in failing.stderr

    # `functions dev --worker hello` runs with that worker's limits on the platform.
    Worker.objects.filter(pk=worker.pk).update(timeout_seconds=0.5)
    (folder / "index.ts").write_text(
        "export async function slow() {\n  await new Promise((r) => setTimeout(r, 2000));\n}\n"
    )
    dev, said = start_dev(cli, home, folder, free_port(), "--worker", "hello")
    try:
        wait_for(lambda: any("limits of hello on the platform: 0.5 s" in x for x in said), 10,
                 "the worker's limits named")  # fmt: skip
        port = dev.args[dev.args.index("--port") + 1]
        slow = httpx.post(f"http://127.0.0.1:{port}/d/hello--dev/api/invoke/slow", timeout=30)
        assert slow.status_code == 504
        assert "did not finish within 500 ms" in slow.json()["error"]["message"]
    finally:
        dev.terminate()
        dev.wait(15)

    ApiKey.objects.filter(member=owner).update(revoked_at="2026-01-01T00:00:00Z")
    assert run(cli, home, "list", check_code=3).returncode == 3


def test_functions_dev_serves_the_folder_again_on_every_save(cli, tmp_path):
    """`functions dev`, as installed from the platform: the platform's runtime on this
    machine, secrets from .env, console lines in the terminal, a new version on each save, a
    broken save that keeps the last good one serving, and type errors named in their file."""
    folder = tmp_path / "hello"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib/greet.ts").write_text(GREET)
    (folder / "index.ts").write_text(INDEX.replace(
        "return { greeting:", "return { secret: process.env.GREETING_SECRET, greeting:"))  # fmt: skip
    (folder / ".env").write_text("GREETING_SECRET=from-dot-env\n")
    port = free_port()
    dev, said = start_dev(cli, tmp_path, folder, port)
    told = lambda text: any(text in line for line in said)  # noqa: E731
    try:
        url = f"http://127.0.0.1:{port}/d/hello--dev/api/invoke/hello"
        first = httpx.post(url, json={"name": "Ann"}, timeout=30).json()
        assert first["result"] == {"secret": "from-dot-env", "greeting": "Hello, Ann!"}
        wait_for(lambda: told("greeting Ann"), 10, "the console line in the terminal")

        saved = time.monotonic()
        (folder / "lib/greet.ts").write_text(GREET.replace("Hello", "Howdy"))
        wait_for(
            lambda: httpx.post(url, json={"name": "Ann"}, timeout=30).json()["result"]["greeting"]
            == "Howdy, Ann!", 30, "the saved version to serve", 0.01,
        )  # fmt: skip
        print(f"save to serve: {(time.monotonic() - saved) * 1000:.0f} ms")

        (folder / "lib/greet.ts").write_text("export function greet(name: string {\n")
        wait_for(lambda: told("cannot be built"), 30, "the syntax error")
        assert httpx.post(url, json={"name": "Bo"}, timeout=30).json()["result"]["greeting"] == (
            "Howdy, Bo!"
        )  # the last good version keeps serving

        (folder / "lib/greet.ts").write_text(
            "export function greet(name: string): string {\n  return 42;\n}\n"
        )
        wait_for(lambda: told("Type errors"), 60, "the type check")
        assert told("lib/greet.ts:2:3")

        (folder / "lib/greet.ts").write_text(
            'export function greet(name: string): string {\n  throw new Error("no " + name);\n}\n'
        )
        wait_for(lambda: httpx.post(url, json={"name": "Cy"}, timeout=30).status_code == 500,
                 30, "the throwing version")  # fmt: skip
        stack = httpx.post(url, json={"name": "Cy"}, timeout=30).json()["error"]["stack"]
        assert "at greet (lib/greet.ts:2:9)" in stack, stack
    finally:
        dev.terminate()
        dev.wait(15)
    assert dev.returncode is not None
    with pytest.raises(httpx.HTTPError):
        httpx.post(url, json={}, timeout=2)  # the runtime went with it


COUNTING = """import type { Context } from "@functions/context";

export async function count(_payload: unknown, ctx: Context) {
  const now = (await ctx.kv.COUNTS.get<number>("n", "json")) ?? 0;
  await ctx.kv.COUNTS.put("n", now + 1);
  return now + 1;
}

export async function later(_payload: unknown, ctx: Context) {
  return await ctx.enqueue("count", {});
}
"""


def test_functions_dev_keeps_key_value_bindings_on_this_machine(cli, tmp_path):
    folder = tmp_path / "counter"
    folder.mkdir()
    (folder / "index.ts").write_text(COUNTING)
    port = free_port()
    url = f"http://127.0.0.1:{port}/d/counter--dev/api/invoke"
    dev, said = start_dev(cli, tmp_path, folder, port, "--kv", "COUNTS", saying="ctx.kv.COUNTS")
    try:
        assert [
            httpx.post(f"{url}/count", json={}, timeout=30).json()["result"] for _ in range(2)
        ] == [1, 2]
        queued = httpx.post(f"{url}/later", json={}, timeout=30).json()
        assert "kept by the platform: deploy to try them" in queued["error"]["message"]
    finally:
        dev.terminate()
        dev.wait(15)
    assert json.loads((folder / ".functions/kv.json").read_text())["COUNTS"]["n"]["version"] == 2
    # The next session starts where this one ended.
    dev, said = start_dev(cli, tmp_path, folder, port, "--kv", "COUNTS")
    try:
        assert httpx.post(f"{url}/count", json={}, timeout=30).json()["result"] == 3
    finally:
        dev.terminate()
        dev.wait(15)
