"""wrk, as every throughput benchmark runs it: one thread, 32 connections, the POST of
`post.lua`; requests per second and p50/p99 in ms. And where the machine's CPU went while it
ran, by kind of process."""

import os
import re
import resource
import subprocess
from pathlib import Path

from procs import command_line, cpu_seconds, numbered

POST = Path(__file__).resolve().parent / "post.lua"
DURATION = os.environ.get("BENCH_SECONDS", "10")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: str = DURATION) -> dict:
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(POST), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out

    def latency(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99")}


# What each process is, by its command line (the first pattern that matches).
KINDS = [
    ("bare Deno.serve", "baseline.ts"),
    ("runtime host", "host.ts"),
    ("tenant sandbox (its isolates' threads included)", "cell.ts"),
    ("control plane (uvicorn: ingest, lookups)", "uvicorn"),
    ("Postgres", "postgres"),
    ("Redis", "redis-server"),
    ("Celery", "celery"),
]
LOAD = "wrk (the load)"  # counted apart: it has ended when its CPU is read


def cpu_by_kind() -> dict[str, float]:
    """CPU seconds so far of every process of each kind that runs now."""
    totals: dict[str, float] = {}
    for pid in numbered():
        line = command_line(pid)
        kind = next((name for name, pattern in KINDS if pattern in line), None)
        if kind is not None:
            totals[kind] = totals.get(kind, 0.0) + cpu_seconds(pid)
    return totals


def wrk_with_cpu(url: str, seconds: str = DURATION) -> tuple[dict, dict[str, float]]:
    """wrk's figures, and the cores each kind of process (KINDS, and LOAD) used on average
    while it ran."""
    before, waited = cpu_by_kind(), children_cpu()
    result = wrk(url, seconds)
    after = cpu_by_kind()
    cores = {k: (after[k] - before.get(k, 0.0)) / float(seconds) for k in after}
    cores[LOAD] = (children_cpu() - waited) / float(seconds)  # wrk: this process's child
    return result, cores


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
