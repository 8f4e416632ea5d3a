"""Builds shared between identical inputs.

A local build is a function of what the tenant uploaded (files, entry, import map), the
lockfile it starts from, the limits and secrets its startup probe runs with, and the
toolchain: the Deno version, the build code itself and the settings that change what a
build accepts. When all of them are the same as for an earlier successful build, its result
(exports, artifact, lockfile) is reused instead of running five Deno steps again; the
deployment's build log says so. Failed builds are not kept: a failure is built again (the
registry may have been down).

One exception keeps "latest" honest: a program that imports packages and starts from no
lockfile (its first build, or "update packages") is resolved afresh, never taken from the
cache, since the registry may have newer versions now.

The cache is a directory of the build machine (BUILD_CACHE_DIR), one file per key holding
the result; it is shared by that machine's builders and never served. Secrets enter the key
only as a keyed digest (HMAC with SECRET_KEY), so a key says nothing about their values.
"""

import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from .deno import deno_bin, deno_env
from .program import Program

BUILD_CODE = ("build.py", "build_cache.py", "confine.py", "deno.py", "program.py")
ROOT = Path(__file__).resolve().parent


class Result(Protocol):
    """What a build gives (build.Built; named here by shape: build.py imports this module)."""

    functions: list[str]
    http: bool
    artifact: str
    lockfile: str
    log: list[str]


@cache
def toolchain() -> str:
    """Deno's version and the build code."""
    version = subprocess.run(
        [deno_bin(), "--version"], capture_output=True, text=True, env=deno_env(), timeout=30
    ).stdout
    digest = hashlib.sha256(version.encode())
    for name in BUILD_CODE:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def build_settings() -> dict[str, object]:
    """The settings that change what a build accepts."""
    return {
        "importHosts": sorted(settings.BUILD_IMPORT_HOSTS),
        "startupCpuMs": settings.STARTUP_CPU_MS,
        "stepMemoryMb": settings.BUILD_STEP_MEMORY_MB,
        "timeoutSeconds": settings.BUILD_TIMEOUT_SECONDS,
        "maxArtifactBytes": settings.MAX_ARTIFACT_BYTES,
    }


def key(program: Program, lockfile: str, env: dict[str, str], memory_mb: int) -> str:
    inputs = {
        "files": program.files,
        "entry": program.entry,
        "imports": program.imports,
        "lockfile": lockfile,
        "env": hmac.new(
            settings.SECRET_KEY.encode(), json.dumps(env, sort_keys=True).encode(), hashlib.sha256
        ).hexdigest(),
        "memoryMb": memory_mb,
        "toolchain": toolchain(),
        "settings": build_settings(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def has_packages(lockfile: str) -> bool:
    try:
        lock = json.loads(lockfile) if lockfile else {}
    except ValueError:
        return True
    return any(lock.get(part) for part in ("npm", "jsr", "remote", "specifiers"))


def find(build_key: str, lockfile: str) -> dict[str, Any] | None:
    """The earlier result for these inputs (the fields of build.Built), or None."""
    if not settings.BUILD_CACHE:
        return None
    path = Path(settings.BUILD_CACHE_DIR) / f"{build_key}.json"
    try:
        entry = json.loads(path.read_text())
        os.utime(path)  # used: kept the longest
    except (OSError, ValueError):
        return None
    if entry["hasPackages"] and not lockfile:
        return None
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entry["created"]))
    note = (
        f"Build cache: the same files, lockfile, limits and secrets were built at {when} by "
        "the same toolchain and build code; that build's result is reused. Its log:"
    )
    return {
        "functions": entry["functions"],
        "http": entry["http"],
        "artifact": entry["artifact"],
        "lockfile": entry["lockfile"],
        "log": [note, *entry["log"]],
    }


def store(build_keys: list[str], built: Result) -> None:
    """Keeps a successful build under each of its keys (written whole, then renamed: a reader
    never sees half an entry), then trims the cache."""
    if not settings.BUILD_CACHE:
        return
    directory = Path(settings.BUILD_CACHE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps({
        "functions": built.functions,
        "http": built.http,
        "artifact": built.artifact,
        "lockfile": built.lockfile,
        "log": built.log,
        "hasPackages": has_packages(built.lockfile),
        "created": time.time(),
    })  # fmt: skip
    for build_key in build_keys:
        with tempfile.NamedTemporaryFile("w", dir=directory, suffix=".tmp", delete=False) as out:
            out.write(text)
        os.replace(out.name, directory / f"{build_key}.json")
    trim(directory)


def trim(directory: Path) -> None:
    """Entries unused for BUILD_CACHE_DAYS go, then the least recently used past BUILD_CACHE_MB."""
    entries = []
    for path in directory.glob("*.json"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    cutoff = time.time() - settings.BUILD_CACHE_DAYS * 86400
    budget = settings.BUILD_CACHE_MB * 1024 * 1024
    kept = 0
    for used, size, path in sorted(entries, reverse=True):  # newest first
        kept += size
        if used < cutoff or kept > budget:
            path.unlink(missing_ok=True)
