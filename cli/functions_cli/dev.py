"""`functions dev [dir]`: the worker in the folder, served on this machine by the platform's
own runtime (runtime/, carried in this package: the same host, sandbox and isolates, so the
same answers, errors, limits and console lines), with no control plane. This module stands in
for the control plane's internal API on a local port: it answers the host's questions about
the one worker, prints the console lines and calls the host reports, and announces each new
build so that the next call runs it.

On every save: the folder is read with the platform's packing rules, bundled with Deno (from
PyPI, as on the platform) with its source map, and served (a syntax error keeps the last good
version serving); then the platform's type check runs beside it and its problems are printed
(`functions deploy` refuses a program that has them). Secrets come from `.env` in the folder."""

import base64
import hashlib
import json
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from dotenv import dotenv_values
from watchfiles import watch

from .api import FAILED, Failure
from .common import command, err, out, signed_in_worker
from .devkv import LocalKv
from .pack import PackError, read_folder, skipped

RUNTIME = Path(__file__).resolve().parent / "runtime"
TENANT = "dev"
ENTRY_CANDIDATES = ("index.ts", "index.tsx", "index.js", "main.ts", "mod.ts", "worker.ts")
# The platform's type-checking rules (deployments/build.py) and its default limits (settings;
# `--worker NAME` takes that worker's own from the platform instead).
COMPILER_OPTIONS = {"strict": True, "noImplicitAny": False}
LIMITS = {
    "timeoutMs": 30_000, "cpuMs": 10_000, "memoryMb": 128, "maxConcurrency": 100,
    "maxResultBytes": 6 * 1024 * 1024, "maxLogLines": 1000, "maxLineBytes": 8192,
    "maxBodyBytes": 1024 * 1024, "invocationsPerMinute": 6000,
}  # fmt: skip
SOURCE_MAP_PREFIX = "//# functions-source-map="  # as deployments/build.py writes it
CELL_ENV = (
    "RUNTIME_DOMAIN,RUNTIME_EGRESS_ALLOW,RUNTIME_EGRESS_DENY,RUNTIME_IDLE_SECONDS,"
    "RUNTIME_MAX_ISOLATES,RUNTIME_MEMORY_MB,RUNTIME_SPARES,RUNTIME_MEMORY_BUDGET_MB,"
    "RUNTIME_KV_CACHE_MS,RUNTIME_KV_CACHE_MB,RUNTIME_CHANNEL"
)
# What the host may read (as `manage.py runtime` allows it); unset ones take their defaults.
HOST_ENV = (
    "RUNTIME_BIND,RUNTIME_PORT,RUNTIME_DOMAIN,CONTROL_PLANE_URL,RUNTIME_TOKEN,"
    "PORTAL_INVOKE_TOKEN_SHA256,RUNTIME_PROCESSES,RUNTIME_IDLE_SECONDS,RUNTIME_MAX_ISOLATES,"
    "RUNTIME_MEMORY_MB,RUNTIME_SPARES,RUNTIME_EGRESS_ALLOW,RUNTIME_EGRESS_DENY,"
    "RUNTIME_BENCH_NO_REPORTS,RUNTIME_MEMORY_BUDGET_MB,RUNTIME_CELL_COMMAND,RUNTIME_CELL_MEMORY_MB,"
    "RUNTIME_MAX_CELLS,RUNTIME_SPARE_CELLS,RUNTIME_CGROUPS,RUNTIME_JOURNAL,RUNTIME_CLOCK_OFFSET_MS,"
    "RUNTIME_CPU_REPORT_MS,DENO_DIR,PATH,NO_COLOR,REDIS_URL,REDIS_DEBUG_MAINTENANCE,"
    "RUNTIME_KV_CACHE_MS,RUNTIME_KV_CACHE_MB"
)
EXPORTS = re.compile(r"^export\s*\{([^}]*)\};?\s*$", re.MULTILINE)
COLOURS = {"error": "red", "warn": "yellow", "debug": "dim", "info": "cyan"}


class Problem(Exception):
    """Why this version cannot be served, for people."""


def deno() -> str:
    import deno as from_pypi

    return from_pypi.find_deno_bin()


@dataclass
class Build:
    code: str
    functions: list[str]
    http: bool
    entry: str
    ms: float
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def artifact(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.id.replace("-", "")[:8]


def entry_of(files: dict[str, str]) -> str:
    for name, key in (("deno.json", "exports"), ("package.json", "main")):
        try:
            declared = json.loads(files.get(name) or "{}").get(key)
        except (ValueError, AttributeError):
            raise Problem(f"{name} is not valid JSON.") from None
        if isinstance(declared, str):
            return declared.removeprefix("./")
    found = next((c for c in ENTRY_CANDIDATES if c in files), None)
    if found is None:
        raise Problem("Which file is the entry module? Name it index.ts, or say which in "
                      'package.json ("main": "src/main.ts").')  # fmt: skip
    return found


def import_map(files: dict[str, str], app: Path) -> dict[str, str]:
    """package.json's dependencies as npm: specifiers, and deno.json's imports, as the
    platform reads them (deployments/program.py)."""
    imports: dict[str, str] = {}
    package = json.loads(files.get("package.json") or "{}")
    for key in ("devDependencies", "dependencies"):
        for name, version in (package.get(key) or {}).items():
            target = version if version.startswith(("npm:", "jsr:")) else f"npm:{name}@{version}"
            imports[name] = target
            imports[f"{name}/"] = target.replace("npm:", "npm:/", 1) + "/"
    for name, target in (json.loads(files.get("deno.json") or "{}").get("imports") or {}).items():
        imports[name] = f"{app.as_uri()}/{target[2:]}" if target.startswith("./") else target
    return imports


class Workspace:
    """The build's directory: the folder's files under app/, the platform's configuration."""

    def __init__(self, root: Path):
        self.root, self.app = root, root / "app"

    def write(self, files: dict[str, str]) -> str:
        shutil.rmtree(self.app, ignore_errors=True)
        for path, text in files.items():
            (self.app / path).parent.mkdir(parents=True, exist_ok=True)
            (self.app / path).write_text(text)
        try:
            imports = import_map(files, self.app)
        except (ValueError, AttributeError) as exc:
            raise Problem(f"package.json or deno.json cannot be read: {exc}") from None
        # The platform's types, as the build maps them (deployments/build.py).
        (self.root / "context.d.ts").write_text((RUNTIME / "context.d.ts").read_text())
        imports["@functions/context"] = (self.root / "context.d.ts").as_uri()
        config = {"imports": imports, "compilerOptions": COMPILER_OPTIONS, "nodeModulesDir": "none"}
        (self.root / "deno.json").write_text(json.dumps(config))
        return f"app/{entry_of(files)}"

    def clean(self, text: str) -> str:
        """Deno's output with this directory taken out: paths as they are in the folder."""
        for prefix in (
            self.app.as_uri() + "/",
            str(self.app) + "/",
            self.root.as_uri(),
            str(self.root),
        ):
            text = text.replace(prefix, "")
        return text.strip()

    def deno(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [deno(), *args], cwd=self.root, capture_output=True, text=True, timeout=timeout,
            env={**_env_of_deno(), "NO_COLOR": "1"},
        )  # fmt: skip

    def build(self, folder: Path) -> Build:
        started = time.monotonic()
        try:
            files = read_folder(folder)
        except PackError as exc:
            raise Problem(str(exc)) from None
        files = {p: t for p, t in files.items() if p != ".env"}
        entry = self.write(files)
        bundled = self.deno("bundle", "--quiet", "--no-check", "--platform=deno",
                            "--sourcemap=external", "-o", "bundle.js", entry)  # fmt: skip
        if bundled.returncode != 0:
            raise Problem(self.clean(bundled.stderr) or "Bundling failed.")
        code = (
            (self.root / "bundle.js")
            .read_text()
            .replace(
                "__deno_internal_createRequire(import.meta.url)",
                '__deno_internal_createRequire("file:///worker/bundle.js")',
            )
        )
        names = [
            (part.split(" as ")[-1]).strip()
            for block in EXPORTS.findall(code)
            for part in block.split(",")
            if part.strip()
        ]
        functions = [n for n in names if n != "default"]
        if not functions and "default" not in names:
            raise Problem("No exported functions and no fetch handler found.")
        code = code.rstrip("\n") + "\n" + SOURCE_MAP_PREFIX + self.source_map() + "\n"
        ms = (time.monotonic() - started) * 1000
        return Build(code, functions, "default" in names, entry[len("app/") :], ms)

    def source_map(self) -> str:
        path = self.root / "bundle.js.map"
        raw = json.loads(path.read_text()) if path.exists() else {}

        def named(source: str) -> str:
            where = (self.root / source).resolve()
            if where.is_relative_to(self.app.resolve()):
                return where.relative_to(self.app.resolve()).as_posix()
            return where.name

        small = {
            "version": 3, "names": [], "mappings": raw.get("mappings", ""),
            "sources": [named(s) for s in raw.get("sources", [])],
        }  # fmt: skip
        return base64.b64encode(json.dumps(small, separators=(",", ":")).encode()).decode()

    def type_problems(self, entry: str) -> str:
        checked = self.deno("check", f"app/{entry}")
        return "" if checked.returncode == 0 else self.clean(checked.stdout + checked.stderr)


def _env_of_deno() -> dict[str, str]:
    """The developer's environment (proxies, CA bundles, DENO_DIR): Deno fetches packages
    and its bundler with it. Tenant code never sees it: the sandboxes start with none."""
    import os

    return {**os.environ, "DENO_NO_UPDATE_CHECK": "1"}


class Plane:
    """The control plane as the runtime host sees it, for one worker: what its hosts
    resolve to, its code, the reports of its calls (printed), the announcements of builds."""

    def __init__(
        self, name: str, folder: Path, limits: dict[str, int] | None = None, kv: list[str] = ()
    ):
        self.name, self.folder = name, folder
        self.kv = LocalKv(list(kv), folder / ".functions" / "kv.json")
        self.limits = {**LIMITS, **(limits or {})}
        self.token = secrets.token_urlsafe(24)
        self.build: Build | None = None
        self.codes: dict[str, str] = {}
        self.listeners: list[queue.Queue] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def production(self) -> str:
        return f"{self.name}--{TENANT}"

    def host_of(self, build: Build) -> str:
        return f"{self.name}--{build.short}--{TENANT}"

    def serve(self, build: Build) -> None:
        with self.lock:
            self.build = build
            self.codes[build.artifact] = build.code
            listeners = list(self.listeners)
        for listener in listeners:
            listener.put([self.production, self.host_of(build)])

    def config(self, alias: bool, have: str) -> dict[str, Any]:
        build = self.build
        assert build is not None
        secrets_file = self.folder / ".env"
        env = (
            {k: v or "" for k, v in dotenv_values(secrets_file).items()}
            if secrets_file.exists()
            else {}
        )
        config = {
            "id": build.id, "tenant": 1, "public": True, "host": self.host_of(build),
            "functions": build.functions, "http": build.http, "artifact": build.artifact,
            **self.limits, "env": env, "kv": {name: name for name in self.kv.bindings},
            "alias": alias,
        }  # fmt: skip
        if alias:
            config["generation"] = 0
        if have != build.artifact:
            config["code"] = build.code
        return config

    def report(self, body: dict) -> None:
        for line in body.get("logs") or []:
            stamp = str(line.get("timestamp", ""))[11:23]
            level = str(line.get("level", "log"))
            colour = COLOURS.get(level, "white")
            err.print(
                f"[dim]{stamp}[/] [bold]{line.get('function', '')}[/] [{colour}]{level:5}[/] ",
                end="", markup=True,
            )  # fmt: skip
            err.print(str(line.get("message", "")), markup=False)
        for call in body.get("invocations") or []:
            status = call.get("status", "")
            colour = "green" if status == "ok" else "red"
            started = call.get("startedAt")
            stamp = (
                datetime.fromtimestamp(started / 1000).strftime("%H:%M:%S.%f")[:12]
                if isinstance(started, (int, float))
                else ""
            )
            err.print(
                f"[dim]{stamp}[/] [bold]{call.get('function', '')}[/] "
                f"[{colour}]{call.get('statusCode', '')} {status}[/] in {call.get('durationMs', 0):.1f} ms",
                markup=True,
            )  # fmt: skip

    def handler(self):
        plane = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def allowed(self) -> bool:
                if self.headers.get("authorization") == f"Bearer {plane.token}":
                    return True
                self.answer(404, {"error": {"code": "not_found", "message": "Not found."}})
                return False

            def do_GET(self):
                if not self.allowed():
                    return
                path, _, query = self.path.partition("?")
                have = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("have", "")
                if path.startswith("/internal/runtime/hosts/"):
                    host = path.rsplit("/", 1)[1]
                    build = plane.build
                    if build and host in (plane.production, plane.host_of(build)):
                        return self.answer(200, plane.config(host == plane.production, have))
                    return self.answer(404, {"error": {"code": "deployment_not_found",
                                       "message": f"This dev server serves {plane.production}."}})  # fmt: skip
                if path.startswith("/internal/runtime/artifacts/"):
                    code = plane.codes.get(path.rsplit("/", 1)[1])
                    if code is None:
                        return self.answer(
                            404, {"error": {"code": "artifact_not_found", "message": "?"}}
                        )
                    data = code.encode()
                    self.send_response(200)
                    self.send_header("content-type", "text/javascript")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                if path == "/internal/runtime/events":
                    return self.events()
                # Keys: a dev worker is public; nothing else is known here.
                return self.answer(404, {"error": {"code": "not_found", "message": "Not found."}})

            def events(self) -> None:
                listener: queue.Queue = queue.Queue()
                with plane.lock:
                    plane.listeners.append(listener)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                try:
                    while True:
                        try:
                            hosts = listener.get(timeout=15)
                            self.wfile.write(f"data: {json.dumps({'hosts': hosts})}\n\n".encode())
                        except queue.Empty:
                            self.wfile.write(b": still here\n\n")
                        self.wfile.flush()
                except OSError:
                    pass
                finally:
                    with plane.lock:
                        plane.listeners.remove(listener)

            def do_POST(self):
                if not self.allowed():
                    return
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/internal/runtime/ingest":
                    batch = json.loads(body or b"{}")
                    plane.report(batch)
                    return self.answer(200, {"invocations": len(batch.get("invocations") or []),
                                             "logs": len(batch.get("logs") or [])})  # fmt: skip
                if self.path == "/internal/runtime/usage":
                    return self.answer(200, {"charged": 0})
                if self.path.endswith("/kv"):
                    return self.answer(*plane.kv.answer(json.loads(body or b"{}")))
                if self.path.endswith("/enqueue"):
                    return self.answer(501, {"error": {"code": "control_plane_unavailable",
                        "message": "functions dev runs calls as they come; runs enqueued with "
                        "ctx.enqueue are kept by the platform: deploy to try them."}})  # fmt: skip
                if self.path.endswith("/runs"):
                    return self.answer(501, {"error": {"code": "control_plane_unavailable",
                        "message": "functions dev runs calls as they come; async runs "
                        "(Prefer: respond-async) are kept by the platform: deploy to try them."}})  # fmt: skip
                return self.answer(404, {"error": {"code": "not_found", "message": "Not found."}})

        return Handler


def start_host(plane: Plane, port: int) -> subprocess.Popen:
    """The platform's runtime host (runtime/host.ts), its sandboxes started without cgroups
    (the limits inside the runtime hold: time, CPU, memory, lines, result size)."""
    cell = [deno(), "run", "--quiet", "--unstable-worker-options", "--allow-net",
            f"--allow-env={CELL_ENV}", f"--allow-read={RUNTIME}", "--no-prompt", "--no-config",
            "--no-lock", str(RUNTIME / "cell.ts")]  # fmt: skip
    env = {
        **_env_of_deno(), "NO_COLOR": "1", "RUNTIME_BIND": "127.0.0.1", "RUNTIME_PORT": str(port),
        "RUNTIME_DOMAIN": "localhost", "CONTROL_PLANE_URL": plane.url, "RUNTIME_TOKEN": plane.token,
        "RUNTIME_PROCESSES": "1", "RUNTIME_CELL_COMMAND": json.dumps(cell), "RUNTIME_SPARES": "1",
        "RUNTIME_SPARE_CELLS": "1", "RUNTIME_CPU_REPORT_MS": "60000", "REDIS_URL": "",
    }  # fmt: skip
    names = ",".join(sorted({*env, *HOST_ENV.split(",")}))
    return subprocess.Popen(
        [deno(), "run", "--quiet", "--unstable-net", "--allow-net", f"--allow-env={names}",
         f"--allow-read={RUNTIME}", f"--allow-run={deno()}", "--no-prompt", "--no-config",
         "--no-lock", str(RUNTIME / "host.ts")],
        env=env, cwd=RUNTIME,
    )  # fmt: skip


def wait_until_serving(url: str, host: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if host.poll() is not None:
            raise Failure(f"The runtime stopped at start (exit code {host.returncode}).", FAILED)
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise Failure("The runtime did not start within 30 s.", FAILED)


def check_in_background(ws: Workspace, build: Build, plane: Plane) -> None:
    def run():
        problems = ws.type_problems(build.entry)
        if plane.build is not build:
            return  # a newer version is being checked
        if problems:
            err.print("[yellow]Type errors[/] (this version serves here; `functions deploy` "
                      "would refuse it):", markup=True)  # fmt: skip
            err.print(problems, markup=False)
        else:
            err.print("[dim]Types check.[/]", markup=True)

    threading.Thread(target=run, daemon=True).start()


@command
def dev(
    folder: Annotated[Path, typer.Argument(help="The worker's folder.")] = Path("."),
    port: Annotated[int, typer.Option(help="Where to serve.")] = 8788,
    name: Annotated[str, typer.Option(help="The worker's name in its URL.")] = "",
    worker: Annotated[
        str,
        typer.Option(
            help="Run with this worker's limits and key-value bindings on the platform (needs a sign-in)."
        ),
    ] = "",
    kv: Annotated[
        list[str] | None,
        typer.Option(
            "--kv",
            help="A key-value binding (ctx.kv.NAME) kept on this machine, in .functions/kv.json; repeat for more.",
        ),
    ] = None,
) -> None:
    """Serve the worker in FOLDER on this machine with the platform's own runtime, again on
    every save; console lines print here; secrets come from FOLDER/.env."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise Failure(f"{folder} is not a folder.", FAILED)
    limits = None
    bindings = list(kv or [])
    if worker:
        api, found = signed_in_worker(worker)
        limits = {k: v for k, v in found["limits"].items() if k in LIMITS}
        # Its bindings' names only: the values here are this machine's, never the platform's.
        listed = api.call("GET", f"/workers/{found['id']}/kv-bindings")["bindings"]
        bindings += [b["name"] for b in listed if b["name"] not in bindings]
        name = name or worker
    # Stopped by a signal (a terminal closed, a supervisor), it stops the runtime it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))
    name = name or re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-") or "worker"
    plane = Plane(name, folder, limits, bindings)
    with tempfile.TemporaryDirectory(prefix="functions-dev-") as tmp:
        ws = Workspace(Path(tmp))
        try:
            first = ws.build(folder)
        except Problem as problem:
            raise Failure(f"The worker cannot be built:\n{problem}", FAILED) from None
        plane.serve(first)
        url = f"http://127.0.0.1:{port}"
        host = start_host(plane, port)
        try:
            wait_until_serving(url, host)
            base = f"{url}/d/{plane.production}"
            out.print(f"Serving [bold]{name}[/] at {base}/ (functions: "
                      f"{', '.join(first.functions) or 'none'}{'; a fetch handler' if first.http else ''})",
                      markup=True)  # fmt: skip
            shown = plane.limits
            out.print(f"  limits{f' of {worker} on the platform' if worker else ' (the platform defaults)'}: "
                      f"{shown['timeoutMs'] / 1000:g} s, {shown['cpuMs']} ms CPU, {shown['memoryMb']} MB",
                      style="dim", markup=False)  # fmt: skip
            if first.functions:
                out.print(
                    f"  curl -X POST {base}/api/invoke/{first.functions[0]} -d '{{}}'", markup=False
                )
            if bindings:
                out.print(f"  key-value: {', '.join(f'ctx.kv.{b}' for b in sorted(bindings))} "
                          f"(kept in {folder / '.functions' / 'kv.json'})", style="dim", markup=False)  # fmt: skip
            out.print("Watching for changes; Ctrl-C stops.", style="dim")
            check_in_background(ws, first, plane)
            watch_and_serve(folder, ws, plane)
        finally:
            host.terminate()
            try:
                host.wait(5)
            except subprocess.TimeoutExpired:
                host.kill()
            plane.server.shutdown()
            plane.kv.save()


def watch_and_serve(folder: Path, ws: Workspace, plane: Plane) -> None:
    def relevant(_change, path: str) -> bool:
        parts = Path(path).relative_to(folder).parts
        return not any(skipped(part) for part in parts) or parts[-1:] == (".env",)

    for changes in watch(
        folder, watch_filter=relevant, debounce=50, step=10, yield_on_timeout=False
    ):
        saved = time.monotonic()
        try:
            build = ws.build(folder)
        except Problem as problem:
            err.print(
                "[red]This version cannot be built[/]; the last one keeps serving:", markup=True
            )
            err.print(str(problem), markup=False)
            continue
        plane.serve(build)
        changed = ", ".join(sorted({Path(p).name for _c, p in changes}))
        took = (time.monotonic() - saved) * 1000
        err.print(f"[green]Serving {build.short}[/] ({changed}: built in {build.ms:.0f} ms, "
                  f"{took:.0f} ms after the save was seen, {datetime.now():%H:%M:%S})", markup=True)  # fmt: skip
        check_in_background(ws, build, plane)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(typer.run(dev))
