"""The type checker kept warm between builds.

`deno check` starts TypeScript's compiler afresh for every build, and loading it with its
libraries is most of a one-file build (about 0.6 of 0.8 s). Deno's language server is the
same compiler with the same module resolution and configuration, kept loaded: a build opens
its modules in it and asks for their diagnostics (75–95 ms), which are then written out the
way `deno check` writes them, so the tenant reads the same message either way.

It reads tenant input, so it is held like a build step, and more:

* one server per build process, confined in cgroups of its own (the build step's memory,
  processes and share of the CPU); a check that passes the build's time limit is stopped
  with its server, and the next build starts another;
* it is replaced after MAX_CHECKS checks, or once it holds more than half the step's
  memory: what it kept from one tenant's build never slows or fails another's;
* builds live in the server's own directory, one directory each, announced to it, so the
  server knows each build's configuration (import map, compiler options) and nothing
  outside it; the first check of a server (about a second, the compiler loading) is its own,
  not counted against any tenant's time limit, and made in the background before any build
  asks: when a build process starts, and when a server is replaced (`prepare`);
* it is a shortcut, never the last word: when it sees something `deno check` would judge
  differently (a module or package it could not resolve), or it stops without a limit to
  blame, the build asks `deno check` (`None` below).
"""

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from . import confine
from .deno import StepLimit, deno_bin, deno_env

log = logging.getLogger(__name__)

MAX_CHECKS = 50  # it grows by 1–2 MB a check
START_SECONDS = 30  # the server's start and warm-up; a build's check has the build's limit
LANGUAGES = {".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
             ".tsx": "typescriptreact", ".js": "javascript", ".mjs": "javascript",
             ".cjs": "javascript", ".jsx": "javascriptreact"}  # fmt: skip
ERROR = 1  # an LSP diagnostic's severity


@dataclass(frozen=True)
class Diagnostic:
    uri: str
    line: int  # 1-based, as `deno check` prints them
    column: int
    end_line: int
    end_column: int
    code: int
    message: str
    related: tuple[tuple[str, int, int, int, int, str], ...] = ()
    source: str = "deno-ts"  # the compiler; "deno" is the server's own module resolution


class ServerStopped(Exception):
    """The language server ended or answered out of turn."""


class Server:
    """One `deno lsp` process, spoken to in JSON-RPC over its pipes."""

    def __init__(self, root: Path, limits: confine.Limits):
        self.root, self.limits, self.checks, self.owner = root, limits, 0, os.getpid()
        self.groups = confine.create(f"check-{os.getpid()}-{time.monotonic_ns()}", limits)
        procs = [str(path / "cgroup.procs") for path in (self.groups or {}).values()]
        # Killed by the kernel the moment this process dies (a build worker killed mid-check),
        # like any build step: started from a thread that lives as long as the process, since
        # the signal follows the thread that started it, and build threads come and go.
        self.proc = (
            _spawner()
            .submit(
                subprocess.Popen,  # noqa: PLW1509 - only system calls between fork and exec
                [deno_bin(), "lsp"],
                preexec_fn=confine.entering(procs, 0, os.getpid()),
                cwd=root,
                env=deno_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            .result()
        )
        # Without a memory cgroup, its resident memory is watched instead (as a build step's).
        self.watcher = (
            confine.RssWatcher(self.proc, limits.memory_bytes) if not self.groups else None
        )
        self.writing = threading.Lock()
        self.answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.next_id = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._read, daemon=True, name="type-checker").start()
        try:
            self.request("initialize", {
                "processId": os.getpid(),
                "rootUri": root.as_uri(),
                "workspaceFolders": [{"uri": root.as_uri(), "name": "builds"}],
                "capabilities": {"workspace": {"configuration": True, "didChangeWatchedFiles": {}},
                                 "textDocument": {"diagnostic": {}}},
                "initializationOptions": {"enable": True, "lint": False},
            }, START_SECONDS)  # fmt: skip
            self.notify("initialized", {})
            self.warm_up()
        except BaseException:
            self.stop()
            raise

    def warm_up(self) -> None:
        """The compiler loaded, with its libraries, by checking a small module: about a second,
        which no tenant's check waits for under its own time limit."""
        folder = self.root / "warm-up"
        folder.mkdir()
        config = folder / "deno.json"
        config.write_text(json.dumps({"compilerOptions": {"strict": True}}))
        module = folder / "main.ts"
        module.write_text("export async function hello(name?: string) {\n  return name ?? 1;\n}\n")
        self.diagnostics(config, [module], START_SECONDS)
        self.checks = 0

    # --- the protocol

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        with self.writing:
            try:
                stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                stdin.flush()
            except (BrokenPipeError, ValueError) as exc:
                raise ServerStopped("its input is closed") from exc

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        self.next_id += 1
        number, answer = self.next_id, queue.Queue[dict[str, Any]](1)
        self.answers[number] = answer
        try:
            self._send({"id": number, "method": method, "params": params})
            deadline = time.monotonic() + timeout
            while True:
                if self.stopped.is_set() and answer.empty():
                    raise ServerStopped(f"it ended during {method}")
                try:
                    reply = answer.get(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
                    break
                except queue.Empty:
                    if time.monotonic() >= deadline:
                        raise StepLimit("time") from None
        finally:
            self.answers.pop(number, None)
        if "error" in reply:
            raise ServerStopped(f"{method}: {reply['error'].get('message')}")
        return reply.get("result")

    def _read(self) -> None:
        stdout: IO[bytes] = self.proc.stdout  # type: ignore[assignment]
        try:
            while True:
                length = 0
                while (line := stdout.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if not line:
                    return
                message = json.loads(stdout.read(length))
                if "method" in message and "id" in message:
                    self._answer(message)
                elif "id" in message and message["id"] in self.answers:
                    self.answers[message["id"]].put(message)
        except (OSError, ValueError):
            return
        finally:
            self.stopped.set()

    def _answer(self, message: dict[str, Any]) -> None:
        """The server's own questions: its settings for each scope, and registrations."""
        result: Any = None
        if message["method"] == "workspace/configuration":
            items = message.get("params", {}).get("items", [])
            result = [{"enable": True, "lint": False} for _ in items]
        with contextlib.suppress(ServerStopped):
            self._send({"id": message["id"], "result": result})

    # --- checking one build

    def diagnostics(self, config: Path, modules: list[Path], timeout: float) -> list[Diagnostic]:
        """The errors of `modules` under the build's configuration file `config`."""
        self.checks += 1
        deadline = time.monotonic() + timeout
        files = [config, config.with_name("deno.lock")]
        # Announced, never withdrawn (see Generation): the server learns of a new file only
        # from its client.
        self.notify("workspace/didChangeWatchedFiles", {
            "changes": [{"uri": path.as_uri(), "type": 1} for path in files]})  # fmt: skip
        opened = []
        try:
            for path in modules:
                language = LANGUAGES.get(path.suffix)
                if language is None:
                    continue
                self.notify("textDocument/didOpen", {"textDocument": {
                    "uri": path.as_uri(), "languageId": language, "version": 1,
                    "text": path.read_text()}})  # fmt: skip
                opened.append(path)
            found = []
            for path in opened:
                left = max(0.0, deadline - time.monotonic())
                report = self.request("textDocument/diagnostic",
                                      {"textDocument": {"uri": path.as_uri()}}, left)  # fmt: skip
                for item in report.get("items", []):
                    if item.get("severity") == ERROR:
                        found.append(_diagnostic(path.as_uri(), item))
        finally:
            for path in opened:
                self.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})
        return found

    def memory_bytes(self) -> int:
        try:
            return int((self.groups["memory"] / "memory.usage_in_bytes").read_text())  # type: ignore[index]
        except (OSError, KeyError, TypeError, ValueError):
            return confine.rss_of_group(self.proc.pid)

    def hit_memory_limit(self) -> bool:
        return confine.hit_memory_limit(self.groups) or bool(self.watcher and self.watcher.tripped)

    def stop(self) -> None:
        if self.watcher:
            self.watcher.stop()
        confine.kill_all(self.groups)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # what was left unsent goes nowhere
                    stream.close()
        confine.remove(self.groups)


_spawners: dict[int, ThreadPoolExecutor] = {}


def _spawner() -> ThreadPoolExecutor:
    """This process's one thread that starts servers (kept, idle, for the process's life)."""
    return _spawners.setdefault(os.getpid(), ThreadPoolExecutor(1, "type-checker-spawner"))


def _diagnostic(uri: str, item: dict[str, Any]) -> Diagnostic:
    start, end = item["range"]["start"], item["range"]["end"]
    related = tuple(
        (r["location"]["uri"], r["location"]["range"]["start"]["line"] + 1,
         r["location"]["range"]["start"]["character"] + 1,
         r["location"]["range"]["end"]["line"] + 1,
         r["location"]["range"]["end"]["character"] + 1, r["message"])
        for r in item.get("relatedInformation") or []
    )  # fmt: skip
    code = item.get("code")
    return Diagnostic(
        uri=uri, line=start["line"] + 1, column=start["character"] + 1,
        end_line=end["line"] + 1, end_column=end["character"] + 1,
        code=code if isinstance(code, int) else 0, message=item.get("message", ""),
        related=related, source=item.get("source", ""),
    )  # fmt: skip


# --- one server per process --------------------------------------------------------------

KEEP = ("deno.json", "deno.lock")  # what stays of a build until its server is replaced


class Generation:
    """A server and the builds made while it serves, in one directory. A build's
    configuration stays there until the server is replaced: a server that loses one it knew
    takes ~0.4 s a check from then on, and grows. The rest of a build goes when it ends."""

    def __init__(self, path: Path):
        self.path, self.users, self.retired = path, 0, False
        self.server: Server | None = None
        self.starting: threading.Event | None = None  # set once a background start ends
        self.owner = os.getpid()


_lock = threading.Lock()
_generation: Generation | None = None
_made = 0
RETRY_SECONDS = 60  # after a server failed to start, builds use deno check this long
_retry_at = 0.0


def _current() -> Generation:
    """This process's generation, made on first use (under _lock)."""
    global _generation, _made
    if _generation is not None and _generation.owner == os.getpid():
        return _generation
    # None yet, or a forked child's copy of its parent's (whose pipes are not ours to use).
    parent = Path(settings.BUILDS_DIR)
    parent.mkdir(parents=True, exist_ok=True)
    if _made == 0:
        for other in parent.iterdir():  # left by processes that are gone, or by this pid
            pid = other.name.partition("-")[0]
            if pid.isdigit() and (int(pid) == os.getpid() or not Path(f"/proc/{pid}").exists()):
                shutil.rmtree(other, ignore_errors=True)
    _made += 1
    # Not under /tmp: the server reads configuration in the directories above its own,
    # and anyone may write to /tmp.
    path = parent / f"{os.getpid()}-{_made}"
    path.mkdir(mode=0o700)
    _generation = Generation(path)
    return _generation


def _retire(generation: Generation) -> None:
    """Under _lock: the server stops; its directory goes once no build uses it."""
    global _generation
    generation.retired = True
    if generation.server is not None:
        generation.server.stop()
        generation.server = None
    if _generation is generation:
        _generation = None
    if generation.users == 0:
        shutil.rmtree(generation.path, ignore_errors=True)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A fresh directory for one build, where this process's server sees it."""
    with _lock:
        generation = _current()
        generation.users += 1
    root = Path(tempfile.mkdtemp(prefix="build-", dir=generation.path))
    try:
        yield root
    finally:
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            elif child.name not in KEEP or generation.retired:
                child.unlink(missing_ok=True)
        with _lock:
            generation.users -= 1
            if generation.retired and generation.users == 0:
                shutil.rmtree(generation.path, ignore_errors=True)


def _limits() -> confine.Limits:
    return confine.Limits(
        memory_bytes=settings.BUILD_STEP_MEMORY_MB * 1024 * 1024, pids=256,
        cpus=settings.BUILD_STEP_CPUS,
    )  # fmt: skip


def prepare() -> None:
    """Starts this process's server in the background if it has none, so that no build waits
    about a second for the compiler to load: at a build worker's start, and when a server is
    replaced (every MAX_CHECKS checks, or after one it had to stop)."""
    if not settings.BUILD_WARM_CHECKER:
        return
    with _lock:
        generation = _current()
        if generation.server or generation.starting or time.monotonic() < _retry_at:
            return
        generation.starting = threading.Event()
    threading.Thread(
        target=_start, args=(generation,), daemon=True, name="warm-type-checker"
    ).start()


def _start(generation: Generation) -> None:
    global _retry_at
    server = None
    try:
        server = Server(generation.path, _limits())
    except (OSError, ServerStopped, StepLimit) as exc:
        if not generation.retired:  # (retired meanwhile, its directory gone: no fault of it)
            log.warning("The warm type checker did not start (%s); using deno check", exc)
    with _lock:
        if server is None:
            if not generation.retired:
                _retry_at = time.monotonic() + RETRY_SECONDS
        elif generation.retired:
            server.stop()
        else:
            generation.server = server
        started, generation.starting = generation.starting, None
    if started is not None:
        started.set()


def check(config: Path, modules: list[Path], timeout: float) -> list[Diagnostic] | None:
    """The type errors of a build's modules (config: its deno.json, in a `workspace()`),
    from the warm server; None when `deno check` must answer instead. Raises StepLimit when
    the check met the build's time or memory limit."""
    prepare()  # (servers start one way only: in the background)
    with _lock:
        starting = _current().starting
    if starting is not None:
        starting.wait(START_SECONDS)
    try:
        return _check(config, modules, timeout)
    finally:
        prepare()  # the next one, if this one was retired


def _check(config: Path, modules: list[Path], timeout: float) -> list[Diagnostic] | None:
    with _lock:
        generation = _current()
        if config.parent.parent != generation.path:
            return None  # made before the server was replaced
        server = generation.server
        if server is None:
            return None  # none could start (it said why), or not within START_SECONDS
        try:
            found = server.diagnostics(config, modules, timeout)
        except StepLimit:
            memory = server.hit_memory_limit()
            _retire(generation)
            raise StepLimit("memory" if memory else "time") from None
        except ServerStopped as exc:
            memory = server.hit_memory_limit()
            _retire(generation)
            if memory:
                raise StepLimit("memory") from None
            log.warning("The warm type checker stopped (%s); using deno check", exc)
            return None
        if server.checks >= MAX_CHECKS or server.memory_bytes() > server.limits.memory_bytes // 2:
            _retire(generation)
    if any(d.source != "deno-ts" for d in found):
        return None  # resolution as the server sees it: deno check is the judge
    return found


def stop() -> None:
    """Ends this process's server (tests, and a worker shutting down)."""
    with _lock:
        if _generation is not None and _generation.owner == os.getpid():
            _retire(_generation)


# --- written as `deno check` writes them ------------------------------------------------


def _excerpt(uri: str, line: int, column: int, end_line: int, end_column: int, indent: str) -> str:
    try:
        text = Path(uri.removeprefix("file://")).read_text().splitlines()[line - 1]
    except (OSError, IndexError):
        return ""
    width = (end_column if end_line == line else len(text) + 1) - column
    mark = "^" if width <= 1 else "~" * width
    return f"{indent}{text}\n{indent}{' ' * (column - 1)}{mark}\n"


def as_deno_check(found: list[Diagnostic]) -> str:
    """The report `deno check` prints for these errors: each with its line, marked, and where
    it is; sorted by file and position, as it sorts them."""
    parts = []
    for d in sorted(found, key=lambda d: (d.uri, d.line, d.column)):
        text = f"TS{d.code} [ERROR]: {d.message}\n"
        text += _excerpt(d.uri, d.line, d.column, d.end_line, d.end_column, "")
        text += f"    at {d.uri}:{d.line}:{d.column}\n"
        for uri, line, column, end_line, end_column, message in d.related:
            text += f"\n    {message}\n"
            text += _excerpt(uri, line, column, end_line, end_column, "    ")
            text += f"        at {uri}:{line}:{column}\n"
        parts.append(text)
    count = f"Found {len(found)} errors.\n\n" if len(found) > 1 else ""
    return "\n".join(parts) + "\n" + count + "error: Type checking failed.\n"
