"""wrk, as every throughput benchmark runs it: one thread, 32 connections, the POST of
`post.lua`; requests per second and p50/p99 in ms."""

import os
import re
import subprocess
from pathlib import Path

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
