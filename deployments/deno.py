"""Runs the Deno binary that the `deno` package on PyPI ships."""

import os
import subprocess
from functools import cache
from pathlib import Path

from django.conf import settings


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


def run_deno(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [deno_bin(), *args],
        cwd=cwd,
        env=deno_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
