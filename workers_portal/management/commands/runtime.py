"""`manage.py runtime`: starts the Deno hosts (the local data plane), restarts one that dies,
and sweeps the cgroups of tenants' sandbox processes that are gone.

Each host runs no tenant code: it starts one sandbox process per tenant (runtime/cell.ts)
through confine.py, which puts it in cgroups of its own (memory, processes, CPU) where the
machine allows.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments import confine
from deployments.deno import deno_bin, deno_env
from workers_portal.startup import require_secure_settings

RUNTIME_DIR = Path(__file__).resolve().parents[3] / "runtime"
CELL_ENV = (
    "RUNTIME_DOMAIN,RUNTIME_EGRESS_ALLOW,RUNTIME_EGRESS_DENY,RUNTIME_IDLE_SECONDS,"
    "RUNTIME_MAX_ISOLATES,RUNTIME_MEMORY_MB,RUNTIME_SPARES,RUNTIME_MEMORY_BUDGET_MB,"
    "RUNTIME_KV_CACHE_MS,RUNTIME_KV_CACHE_MB,RUNTIME_CHANNEL"
)


def cell_command() -> list[str]:
    """How a host starts a tenant's sandbox: confined, then Deno with no more than it needs
    (the network for the tenant's outbound requests, its own files, its settings); it keeps
    only the network, in one thread, once it has started (runtime/pool.ts, Sandbox)."""
    return [
        sys.executable, "-I", "-S", str(Path(confine.__file__)),
        "--create", "{name}",
        "--memory-bytes", str(settings.RUNTIME_CELL_MEMORY_MB * 1024 * 1024),
        "--pids", str(settings.RUNTIME_CELL_PIDS),
        "--cpus", str(settings.RUNTIME_CELL_CPUS),
        "--",
        deno_bin(), "run", "--quiet",
        "--unstable-worker-options",  # the network thread's own permissions (pool.ts)
        "--allow-net",  # that thread's; the rest of the process gives it up at its start
        f"--allow-env={CELL_ENV}",
        f"--allow-read={RUNTIME_DIR}",
        "--no-prompt", "--no-config", "--no-lock",
        str(RUNTIME_DIR / "cell.ts"),
    ]  # fmt: skip


def host_command() -> list[str]:
    env_names = (
        "RUNTIME_BIND,RUNTIME_PORT,RUNTIME_DOMAIN,CONTROL_PLANE_URL,RUNTIME_TOKEN,"
        "PORTAL_INVOKE_TOKEN_SHA256,RUNTIME_PROCESSES,"
        "RUNTIME_IDLE_SECONDS,RUNTIME_MAX_ISOLATES,RUNTIME_MEMORY_MB,RUNTIME_SPARES,"
        "RUNTIME_EGRESS_ALLOW,RUNTIME_EGRESS_DENY,RUNTIME_BENCH_NO_REPORTS,RUNTIME_MEMORY_BUDGET_MB,"
        "RUNTIME_CELL_COMMAND,RUNTIME_CELL_MEMORY_MB,RUNTIME_MAX_CELLS,RUNTIME_SPARE_CELLS,"
        "RUNTIME_CGROUPS,RUNTIME_JOURNAL,RUNTIME_CLOCK_OFFSET_MS,RUNTIME_CPU_REPORT_MS,DENO_DIR,PATH,"
        "NO_COLOR,RUNTIME_KV_CACHE_MS,RUNTIME_KV_CACHE_MB,"
        "REDIS_URL,REDIS_DEBUG_MAINTENANCE"  # the second: read by the Redis client itself
    )
    return [
        deno_bin(),
        "run",
        "--quiet",
        "--unstable-net",  # reusePort: several host processes share one port
        "--allow-net",
        f"--allow-env={env_names}",
        f"--allow-read={RUNTIME_DIR},{settings.RUNTIME_JOURNAL_DIR}",
        f"--allow-write={settings.RUNTIME_JOURNAL_DIR}",  # its journal of reports
        f"--allow-run={sys.executable}",  # confine.py, which starts and ends the sandboxes
        "--no-prompt",
        str(RUNTIME_DIR / "host.ts"),
    ]


def journal_path(number: int) -> str:
    """Host number `number`'s journal: the same for the host started in a killed one's place,
    so that it sends what the killed one had not (runtime/journal.ts)."""
    Path(settings.RUNTIME_JOURNAL_DIR).mkdir(parents=True, exist_ok=True)
    return str(Path(settings.RUNTIME_JOURNAL_DIR) / f"host-{settings.RUNTIME_PORT}-{number}.ndjson")


def adopt_journals(own: list[str]) -> int:
    """Journals no host of this runtime will write (another port's, or a host number it no
    longer runs) and no living host holds: what their hosts had not sent yet is appended to
    this runtime's first journal, whose host sends it. Returns the entries moved."""
    moved = 0
    into = Path(own[0])
    for path in sorted(Path(settings.RUNTIME_JOURNAL_DIR).glob("host-*.ndjson")):
        if str(path) in own:
            continue
        shipped = path.with_name(path.name + ".shipped")
        with open(path, "rb") as journal:
            try:  # the lock a living host holds on its journal (runtime/journal.ts)
                fcntl.flock(journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            offset = 0
            with contextlib.suppress(OSError, ValueError):
                offset = int(shipped.read_text() or 0)
            if offset > os.fstat(journal.fileno()).st_size:
                offset = 0  # a compaction cut short: all of it is still to send (journal.ts)
            journal.seek(offset)
            rest = journal.read()
            rest = rest[: rest.rfind(b"\n") + 1]  # whole entries: a torn last one is dropped
            if rest:
                with open(into, "ab") as target:
                    fcntl.flock(target, fcntl.LOCK_EX)
                    target.write(rest)
                moved += rest.count(b"\n")
            path.unlink()
            shipped.unlink(missing_ok=True)
    return moved


def host_env(
    processes: int | None = None, cgroups: bool | None = None, number: int = 0
) -> dict[str, str]:
    return deno_env(
        RUNTIME_BIND=settings.RUNTIME_BIND,
        RUNTIME_PORT=str(settings.RUNTIME_PORT),
        RUNTIME_DOMAIN=settings.RUNTIME_DOMAIN,
        CONTROL_PLANE_URL=settings.CONTROL_PLANE_URL,
        RUNTIME_TOKEN=settings.RUNTIME_TOKEN,
        PORTAL_INVOKE_TOKEN_SHA256=hashlib.sha256(
            settings.PORTAL_INVOKE_TOKEN.encode()
        ).hexdigest(),
        RUNTIME_PROCESSES=str(processes or settings.RUNTIME_PROCESSES),
        RUNTIME_IDLE_SECONDS=str(settings.RUNTIME_IDLE_SECONDS),
        RUNTIME_MAX_ISOLATES=str(settings.RUNTIME_MAX_ISOLATES),
        RUNTIME_MEMORY_MB=str(settings.RUNTIME_MEMORY_MB),
        RUNTIME_SPARES=str(settings.RUNTIME_SPARES),
        RUNTIME_EGRESS_ALLOW=",".join(settings.RUNTIME_EGRESS_ALLOW),
        RUNTIME_EGRESS_DENY=",".join(settings.RUNTIME_EGRESS_DENY),
        RUNTIME_MEMORY_BUDGET_MB=str(settings.RUNTIME_MEMORY_BUDGET_MB),
        RUNTIME_JOURNAL=journal_path(number),
        RUNTIME_CELL_COMMAND=json.dumps(cell_command()),
        RUNTIME_CELL_MEMORY_MB=str(settings.RUNTIME_CELL_MEMORY_MB),
        RUNTIME_MAX_CELLS=str(settings.RUNTIME_MAX_CELLS),
        RUNTIME_SPARE_CELLS=str(settings.RUNTIME_SPARE_CELLS),
        RUNTIME_CGROUPS="1" if (confine.available() if cgroups is None else cgroups) else "",
        # Limits counted across hosts and machines (runtime/limits.ts); RUNTIME_REDIS_URL=""
        # counts them per host.
        REDIS_URL=settings.RUNTIME_REDIS_URL,
        RUNTIME_CLOCK_OFFSET_MS=str(settings.RUNTIME_CLOCK_OFFSET_MS),
        RUNTIME_CPU_REPORT_MS=str(settings.RUNTIME_CPU_REPORT_MS),
    )


class Command(BaseCommand):
    help = (
        "Run the local data plane: Deno host processes sharing one port (one per core by "
        "default), each restarted if it dies."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--processes", type=int, default=settings.RUNTIME_PROCESSES,
            help="host processes sharing the port (default: RUNTIME_PROCESSES, one per core)",
        )  # fmt: skip

    def handle(self, *args, **options):
        require_secure_settings()
        self.processes = max(1, options["processes"])
        self.cgroups = confine.available()
        if not self.cgroups:
            self.stderr.write(
                "runtime: no cgroups can be made here; tenants' sandboxes are limited by "
                "rlimits and a watch of their resident memory instead"
            )
        moved = adopt_journals([journal_path(n) for n in range(self.processes)])
        if moved:
            self.stderr.write(f"runtime: {moved} reports left by hosts no longer run will be sent")
        stopping = threading.Event()
        hosts: list[subprocess.Popen] = []

        def stop(signum, frame):
            stopping.set()
            for proc in hosts:
                if proc.poll() is None:
                    proc.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        threads = [
            threading.Thread(target=self.supervise, args=(n, hosts, stopping), daemon=True)
            for n in range(self.processes)
        ]
        for thread in threads:
            thread.start()
        swept = time.monotonic()
        while not stopping.is_set():
            stopping.wait(1)
            if time.monotonic() - swept > 60:  # cgroups of sandboxes a killed host left
                confine.sweep()
                swept = time.monotonic()
        for thread in threads:
            thread.join(10)

    def supervise(self, number: int, hosts: list, stopping: threading.Event) -> None:
        restarts = 0
        while not stopping.is_set():
            started = time.monotonic()
            proc = subprocess.Popen(
                host_command(),
                env=host_env(self.processes, self.cgroups, number),
                cwd=RUNTIME_DIR,
            )
            hosts.append(proc)
            code = proc.wait()
            hosts.remove(proc)
            if stopping.is_set():
                return
            # A host that ran a while earns a fast restart; one crashing at start backs off.
            restarts = 0 if time.monotonic() - started > 30 else restarts + 1
            delay = min(0.5 * 2**restarts, 10)
            self.stderr.write(
                f"runtime host {number} exited with {code}; restarting in {delay:.1f} s"
            )
            stopping.wait(delay)
