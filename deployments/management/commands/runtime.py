"""`manage.py runtime`: starts the Deno host (the local data plane) and restarts it if it dies."""

import signal
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments.deno import deno_bin, deno_env

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"


def host_command() -> list[str]:
    env_names = "RUNTIME_BIND,RUNTIME_PORT,RUNTIME_DOMAIN,CONTROL_PLANE_URL,RUNTIME_TOKEN"
    return [
        deno_bin(),
        "run",
        "--quiet",
        "--unstable-worker-options",  # per-isolate permissions for each deployment's Worker
        "--allow-net",
        f"--allow-env={env_names}",
        f"--allow-read={RUNTIME_DIR}",
        "--no-prompt",
        str(RUNTIME_DIR / "host.ts"),
    ]


def host_env() -> dict[str, str]:
    return deno_env(
        RUNTIME_BIND=settings.RUNTIME_BIND,
        RUNTIME_PORT=str(settings.RUNTIME_PORT),
        RUNTIME_DOMAIN=settings.RUNTIME_DOMAIN,
        CONTROL_PLANE_URL=settings.CONTROL_PLANE_URL,
        RUNTIME_TOKEN=settings.RUNTIME_TOKEN,
    )


class Command(BaseCommand):
    help = "Run the local data plane (a Deno host serving deployment URLs); restart it if it dies."

    def handle(self, *args, **options):
        stopping = False
        proc: subprocess.Popen | None = None

        def stop(signum, frame):
            nonlocal stopping
            stopping = True
            if proc and proc.poll() is None:
                proc.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        restarts = 0
        while not stopping:
            started = time.monotonic()
            proc = subprocess.Popen(host_command(), env=host_env(), cwd=RUNTIME_DIR)
            code = proc.wait()
            if stopping:
                break
            # A host that ran a while earns a fast restart; one crashing at start backs off.
            restarts = 0 if time.monotonic() - started > 30 else restarts + 1
            delay = min(0.5 * 2**restarts, 10)
            self.stderr.write(f"runtime host exited with {code}; restarting in {delay:.1f} s")
            time.sleep(delay)
        if proc and proc.poll() is None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
