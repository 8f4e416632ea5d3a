"""`make bench-floors`: the least the design's choices cost on this machine, with none of
the platform's work: a process boundary on the warm path (beside bench/throughput.py), and
memory per deployment for each way of holding one (beside its idle-deployment figure).

Six servers answer the same POST (`post.lua`) with the same function (`bench/baseline.ts`'s
hello), alternated for three rounds under wrk, so each round's ratios share one state of
the machine:

* bare: `Deno.serve` running the function (the baseline);
* thread: `Deno.serve` handing each call to a worker thread and answering (the least a
  design with tenant code on its own thread does);
* haproxy in front, as the least any second process costs: HTTP mode (it parses every
  request, as the platform's host does) and TCP mode (it only relays bytes, as a front that
  routed a connection once and then spliced it would), each before bare and before thread.

haproxy (Debian's) is installed when missing and we are root.

Memory: `bench/floors/memory.ts` loads 200 small deployments as node:vm contexts in one
worker thread, as node:worker_threads workers (what the platform's isolates are), and as Web
Workers, and prints resident memory per deployment.
"""

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from deno import find_deno_bin
from load import CONNECTIONS, DURATION, wrk

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench"
ROUNDS = 3


def free_ports(n: int) -> list[int]:
    held = [socket.socket() for _ in range(n)]
    for s in held:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports


BARE, THREAD, *FRONT_PORTS = free_ports(6)
FRONTS = {  # name: (port, haproxy mode, server behind it)
    "haproxy http -> bare": (FRONT_PORTS[0], "http", BARE),
    "haproxy http -> thread": (FRONT_PORTS[1], "http", THREAD),
    "haproxy tcp -> bare": (FRONT_PORTS[2], "tcp", BARE),
    "haproxy tcp -> thread": (FRONT_PORTS[3], "tcp", THREAD),
}


def haproxy_config() -> str:
    parts = ["global\n  maxconn 1000\ndefaults\n  timeout connect 5s\n  timeout client 30s\n"
             "  timeout server 30s\n"]  # fmt: skip
    for n, (port, mode, behind) in enumerate(FRONTS.values()):
        reuse = "  option http-keep-alive\n  http-reuse always\n" if mode == "http" else ""
        parts.append(
            f"listen f{n}\n  mode {mode}\n  bind 127.0.0.1:{port}\n{reuse}"
            f"  server s{n} 127.0.0.1:{behind}\n"
        )
    return "".join(parts)


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", json={"name": "x"}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"nothing answers on port {port}")


def main() -> None:
    subprocess.run([ROOT / "bin" / "ensure-package", "haproxy", "haproxy"], check=True)
    deno = find_deno_bin()
    servers = {"bare": BARE, "thread": THREAD} | {
        name: port for name, (port, _, _) in FRONTS.items()
    }
    with tempfile.NamedTemporaryFile("w", suffix=".cfg") as config:
        config.write(haproxy_config())
        config.flush()
        procs = [
            subprocess.Popen(
                [deno, "run", "-A", HERE / "baseline.ts", str(BARE)], stdout=subprocess.DEVNULL
            ),
            subprocess.Popen(
                [deno, "run", "-A", HERE / "floors" / "threaded.ts", str(THREAD)],
                stdout=subprocess.DEVNULL,
            ),  # fmt: skip
            subprocess.Popen(
                ["haproxy", "-db", "-f", config.name],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),  # fmt: skip
        ]
        try:
            for port in servers.values():
                wait_up(port)
            # Each answer came from the server started here (the ports were free a moment ago).
            assert all(proc.poll() is None for proc in procs), "a server did not start"
            for port in servers.values():
                wrk(f"http://127.0.0.1:{port}/", "3")  # warm-up: JIT, connections
            rounds = []
            for _ in range(ROUNDS):
                rounds.append(
                    {name: wrk(f"http://127.0.0.1:{port}/") for name, port in servers.items()}
                )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    print(f"wrk -t1 -c{CONNECTIONS} -d{DURATION}s, {ROUNDS} rounds alternated; median (min-max)\n")
    print("| server | req/s | p50 ms | req/s vs bare | p50 vs bare |")
    print("|---|---|---|---|---|")
    for name in servers:
        rps = [r[name]["rps"] for r in rounds]
        p50 = [r[name]["p50"] for r in rounds]
        share = [r[name]["rps"] / r["bare"]["rps"] * 100 for r in rounds]
        times = [r[name]["p50"] / r["bare"]["p50"] for r in rounds]
        print(
            f"| {name} | {statistics.median(rps):,.0f} ({min(rps):,.0f}-{max(rps):,.0f}) "
            f"| {statistics.median(p50):.2f} | {statistics.median(share):.0f}% "
            f"({min(share):.0f}-{max(share):.0f}) | {statistics.median(times):.2f}x "
            f"({min(times):.2f}-{max(times):.2f}) |"
        )

    print("\nmemory per loaded deployment, 200 of each (bench/floors/memory.ts)\n")
    print("| held as | MB each |\n|---|---|")
    for mode in ("contexts", "workers", "web-workers"):
        out = subprocess.run([deno, "run", "-A", HERE / "floors" / "memory.ts", mode, "200"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        print(f"| {mode} | {json.loads(out)['mbEach']:.2f} |")


if __name__ == "__main__":
    main()
