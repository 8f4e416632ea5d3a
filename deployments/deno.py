"""Runs the Deno binary that the `deno` package on PyPI ships."""

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from django.conf import settings

from . import confine


@cache
def deno_bin() -> str:
    from deno import find_deno_bin

    return find_deno_bin()


def deno_env(**extra: str) -> dict[str, str]:
    Path(settings.DENO_DIR).mkdir(parents=True, exist_ok=True)
    # The caller's environment passes through (proxies, CA bundles for the one download a
    # build makes: the bundler); tenant code never sees it, its isolates have no env access.
    env = {
        **os.environ,
        "DENO_DIR": str(settings.DENO_DIR),
        "NO_COLOR": "1",
        "RUST_BACKTRACE": "0",
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PROMPT": "1",
    }
    env.update(extra)
    return env


class StepLimit(Exception):
    """A build step met one of its limits: "memory", "time" or "output"."""

    def __init__(self, limit: str):
        super().__init__(limit)
        self.limit = limit


def run_deno(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """A build step (it reads tenant input), confined: memory, processes, a share of the CPU,
    its time."""
    limits = confine.Limits(
        memory_bytes=settings.BUILD_STEP_MEMORY_MB * 1024 * 1024, pids=256,
        cpus=settings.BUILD_STEP_CPUS,
    )  # fmt: skip
    done = confine.run([deno_bin(), *args], limits, timeout, cwd=cwd, env=deno_env())
    if done.limit:
        raise StepLimit(done.limit)
    return subprocess.CompletedProcess(args, done.returncode, done.stdout, done.stderr)


def bundler_in_place() -> bool:
    """Whether Deno's bundler is in the package cache (where Deno 2.9 puts it; the copy in
    flight is a dot file)."""
    return any((Path(settings.DENO_DIR) / "dl").glob("esbuild-*/esbuild*"))


@contextlib.contextmanager
def bundler_ready() -> Iterator[None]:
    """Held around a bundle step. Deno's first bundle with a package cache fetches its bundler
    (esbuild, from npm) and copies it into DENO_DIR/dl; two first bundles at once race there
    and one fails ("failed to copy esbuild binary ... No such file or directory": 5 of 24
    bundles, six at a time on an empty cache). Until the bundler is in place, bundles take
    turns, across processes; after that, this costs one directory listing."""
    if bundler_in_place():
        yield
        return
    downloads = Path(settings.DENO_DIR) / "dl"
    downloads.mkdir(parents=True, exist_ok=True)
    with open(downloads / ".bundler.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
