"""`manage.py runtime`: starts the Deno host (the local data plane) and restarts it if it dies."""

import hashlib
import signal
import subprocess
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments.deno import deno_bin, deno_env
from workers_portal.startup import require_secure_settings

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"


def host_command() -> list[str]:
    env_names = (
        "RUNTIME_BIND,RUNTIME_PORT,RUNTIME_DOMAIN,CONTROL_PLANE_URL,RUNTIME_TOKEN,"
        "PORTAL_INVOKE_TOKEN_SHA256,RUNTIME_PROCESSES,"
        "RUNTIME_IDLE_SECONDS,RUNTIME_MAX_ISOLATES,RUNTIME_MEMORY_MB,RUNTIME_SPARES,"
        "RUNTIME_EGRESS_ALLOW,RUNTIME_EGRESS_DENY,RUNTIME_BENCH_NO_REPORTS,RUNTIME_MEMORY_BUDGET_MB,"
        "REDIS_URL,REDIS_DEBUG_MAINTENANCE"  # the second: read by the Redis client itself
    )
    return [
        deno_bin(),
        "run",
        "--quiet",
        "--unstable-worker-options",  # per-isolate permissions for each deployment's Worker
        "--unstable-net",  # reusePort: several host processes share one port
        "--allow-net",
        f"--allow-env={env_names}",
        f"--allow-read={RUNTIME_DIR}",
        "--no-prompt",
        str(RUNTIME_DIR / "host.ts"),
    ]


def host_env(processes: int | None = None) -> dict[str, str]:
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
        # Limits counted across hosts and machines (runtime/limits.ts); RUNTIME_REDIS_URL=""
        # counts them per host.
        REDIS_URL=settings.RUNTIME_REDIS_URL,
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
        while not stopping.is_set():
            stopping.wait(1)
        for thread in threads:
            thread.join(10)

    def supervise(self, number: int, hosts: list, stopping: threading.Event) -> None:
        restarts = 0
        while not stopping.is_set():
            started = time.monotonic()
            proc = subprocess.Popen(host_command(), env=host_env(self.processes), cwd=RUNTIME_DIR)
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
