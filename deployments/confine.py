"""Limits the operating system enforces on a process that runs or reads tenant input: the
runtime's sandbox processes (one per tenant), a build's steps and its startup probe.

Where the machine allows (cgroup v1 controllers writable by this user, as on these
machines), each confined process gets its own cgroup: memory (the kernel stops the process
group at its limit, whatever kind of memory it is), pids (processes and threads), cpu (a
share of the cores, so one tenant cannot take them all) and cpuacct (the CPU it used, charged
to the tenant). Where it does not, rlimits (CPU seconds, open files, no core files) and a
watcher of the resident memory do what they can; `available()` says which.

Also a script (standard library only, run as `python -I -S confine.py ... -- cmd`): it puts
itself into the cgroups, sets the rlimits, starts a new session (so that the whole group can
be killed at once) and becomes `cmd`. The runtime's host (Deno) starts its sandbox processes
through it.
"""

import argparse
import contextlib
import ctypes
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
PARENT = "functions"  # our cgroups live under <this process's cgroup>/functions/
CPU_PERIOD_US = 100_000


def own_path(controller: str) -> Path | None:
    """This process's cgroup directory for a v1 controller, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            base = ROOT / controller
            if (base / "cgroup.procs").exists():
                return base / path.lstrip("/")
    return None


def available() -> bool:
    """Whether cgroups can be made here (v1, writable): checked by making one."""
    probe = _make(f"probe-{os.getpid()}")
    if probe is None:
        return False
    remove(probe)
    return True


def _make(name: str) -> dict[str, Path] | None:
    made = {}
    for controller in CONTROLLERS:
        own = own_path(controller)
        if own is None:
            remove(made)
            return None
        path = own / PARENT / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            remove(made)
            return None
        made[controller] = path
    return made


def existing(name: str) -> dict[str, Path]:
    """The cgroups of that name that are there."""
    found = {}
    for controller in CONTROLLERS:
        own = own_path(controller)
        if own is not None and (own / PARENT / name).is_dir():
            found[controller] = own / PARENT / name
    return found


def remove(groups: dict[str, Path] | None) -> None:
    for path in (groups or {}).values():
        with contextlib.suppress(OSError):  # still has a process, or gone: swept later
            path.rmdir()


def _write(path: Path, value) -> None:
    path.write_text(str(value))


@dataclass
class Limits:
    memory_bytes: int
    pids: int = 256
    cpus: float = 1.0  # cores at most, as a CFS quota
    cpu_seconds: int = 0  # total CPU time, as RLIMIT_CPU (0: none)


def create(name: str, limits: Limits) -> dict[str, Path] | None:
    """A cgroup per controller with the limits written in; None where they cannot be made."""
    groups = _make(name)
    if groups is None:
        return None
    try:
        _write(groups["memory"] / "memory.limit_in_bytes", limits.memory_bytes)
        with contextlib.suppress(OSError):  # swap too, where the kernel accounts it
            _write(groups["memory"] / "memory.memsw.limit_in_bytes", limits.memory_bytes)
        _write(groups["pids"] / "pids.max", limits.pids)
        _write(groups["cpu"] / "cpu.cfs_period_us", CPU_PERIOD_US)
        _write(groups["cpu"] / "cpu.cfs_quota_us", int(CPU_PERIOD_US * limits.cpus))
    except OSError:
        remove(groups)
        return None
    return groups


def join(groups: dict[str, Path] | None, pid: int) -> None:
    for path in (groups or {}).values():
        _write(path / "cgroup.procs", pid)


def set_rlimits(cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def memory_peak(groups: dict[str, Path] | None) -> int:
    try:
        return int((groups["memory"] / "memory.max_usage_in_bytes").read_text())
    except (OSError, KeyError, TypeError, ValueError):
        return 0


def hit_memory_limit(groups: dict[str, Path] | None) -> bool:
    """Whether the kernel stopped a process of the group at its memory limit."""
    try:
        memory = groups["memory"]
        kills = (memory / "memory.oom_control").read_text().split("oom_kill ")
        failed = int((memory / "memory.failcnt").read_text())
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return failed > 0 or (len(kills) > 1 and int(kills[1].split()[0]) > 0)


def cpu_used_ns(groups: dict[str, Path] | None) -> int:
    try:
        return int((groups["cpuacct"] / "cpuacct.usage").read_text())
    except (OSError, KeyError, TypeError, ValueError):
        return 0


def kill_all(groups: dict[str, Path] | None) -> None:
    """Every process of the cgroup (a confined process may have started others)."""
    try:
        pids = (groups["pids"] / "cgroup.procs").read_text().split()
    except (OSError, KeyError, TypeError):
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def rss_of_group(pgid: int) -> int:
    """Resident bytes of every process in a process group (the fallback without cgroups)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # the fifth field of stat: the process group
                continue
            total += int(fields[21]) * resource.getpagesize()  # rss, in pages
        except (OSError, IndexError, ValueError):
            continue
    return total


def sweep(older_than: float = 300) -> int:
    """Removes the sandboxes' cgroups whose processes are all gone (a host killed before it
    could); how many. Young ones are left: one may be about to be joined."""
    removed = 0
    cutoff = time.time() - older_than
    for controller in CONTROLLERS:
        own = own_path(controller)
        parent = own / PARENT if own else None
        if parent is None or not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.is_dir() and child.name.startswith("cell-") and child.stat().st_mtime < cutoff:
                try:
                    child.rmdir()
                    removed += 1
                except OSError:
                    pass
    return removed


# --- running a command to its end under limits (builds) ----------------------------------


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    limit: str | None  # "memory", "cpu", "time" or "output" when one stopped it
    peak_bytes: int


# What a confined process may write to each of stdout and stderr before it is stopped. Its
# output is held in this process's memory, and a tenant's top level run by the startup probe
# writes at gigabytes a second (measured: 5 GB in 8 s, 17 GB resident here) unless bounded.
MAX_OUTPUT_BYTES = 64 * 1024 * 1024


def run(
    args: list[str],
    limits: Limits,
    timeout: float,
    cwd: Path | None = None,
    env: dict | None = None,
    input: str | None = None,
    max_output: int = MAX_OUTPUT_BYTES,
) -> Outcome:
    """Runs `args` confined to `limits`, to its end or to the first limit it meets; more than
    `max_output` bytes on stdout or stderr is one ("output")."""
    groups = create(f"run-{uuid.uuid4().hex[:12]}", limits)
    procs = [str(path / "cgroup.procs") for path in (groups or {}).values()]
    proc = subprocess.Popen(  # noqa: PLW1509 - only system calls between fork and exec
        args,
        preexec_fn=entering(procs, limits.cpu_seconds, os.getpid()),
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watcher = None
    if groups is None:  # no memory cgroup: watch the resident memory instead
        watcher = RssWatcher(proc, limits.memory_bytes)
    too_much = threading.Event()
    out, err = bytearray(), bytearray()
    stop = functools.partial(_kill, proc, groups)
    threading.Thread(target=_give, args=(proc.stdin, (input or "").encode()), daemon=True).start()
    readers = [
        threading.Thread(target=_take, args=(pipe, kept, max_output, too_much, stop), daemon=True)
        for pipe, kept in ((proc.stdout, out), (proc.stderr, err))
    ]
    for reader in readers:
        reader.start()
    limit = None
    deadline = time.monotonic() + timeout
    for reader in readers:  # to the end of its output, which is mostly the end of the process
        reader.join(max(0, deadline - time.monotonic()))
    late = any(reader.is_alive() for reader in readers)
    if not late:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            late = True
    if late:
        limit = "time"
        stop()
        proc.wait()
        for reader in readers:
            reader.join(5)  # a process it left may hold a pipe open: not forever
    if watcher:
        watcher.stop()
    if too_much.is_set():
        limit = "output"
    elif limit is None:
        if hit_memory_limit(groups) or (watcher and watcher.tripped):
            limit = "memory"
        elif proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and limits.cpu_seconds:
            limit = "cpu"
    peak = memory_peak(groups) or (watcher.peak if watcher else 0)
    kill_all(groups)
    remove(groups or {})
    return Outcome(proc.returncode, _text(out), _text(err), limit, peak)


def _text(data: bytearray) -> str:
    """As `subprocess` gives text: UTF-8, universal newlines."""
    return bytes(data).decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def entering(procs: list[str], cpu_seconds: int, parent: int | None):
    """What a build step does between fork and exec (`enter`, as the script below does for
    the processes the runtime starts), without a Python start per step (~45 ms). libc is
    loaded here, before the fork: the caller may have other threads."""
    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: enter(procs, cpu_seconds, parent, libc)


def _give(pipe, data: bytes) -> None:
    with contextlib.suppress(OSError):  # it ended without reading: nothing to give
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


def _take(pipe, into: bytearray, most: int, too_much: threading.Event, stop) -> None:
    """Reads `pipe` to its end, keeping at most `most` bytes; past that, stops the process
    and reads on (to its end) without keeping."""
    while chunk := pipe.read1(65536):
        if too_much.is_set():
            continue
        if len(into) + len(chunk) > most:
            too_much.set()
            stop()
        else:
            into += chunk
    pipe.close()


def _kill(proc: subprocess.Popen, groups) -> None:
    kill_all(groups)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class RssWatcher:
    """Kills the process group once its resident memory passes the limit (checked every
    50 ms): the fallback where no memory cgroup can be made."""

    def __init__(self, proc: subprocess.Popen, limit: int):
        self.proc, self.limit, self.tripped, self.peak = proc, limit, False, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self) -> None:
        while not self.stopping.wait(0.05) and self.proc.poll() is None:
            rss = rss_of_group(self.proc.pid)
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.tripped = True
                _kill(self.proc, None)
                return

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(1)


# --- the script: join, limit, start a session, become the command ------------------------


PR_SET_PDEATHSIG = 1


def enter(procs: list[str], cpu_seconds: int, parent: int | None, libc) -> None:
    """Becoming confined, in the process about to exec the command: its own session (killed
    as one group, with whatever it starts), killed with its caller, in its cgroups, under its
    rlimits. System calls only."""
    os.setsid()
    if parent:
        # The kernel sends SIGKILL when the caller dies (a build worker killed mid-step): in
        # its own session, a step would otherwise run on, orphaned, its cgroup never removed.
        # Kept across exec; the thread that started it waits for it, so only the process's
        # death fires it.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # it died before the line above
            os._exit(137)
    pid = str(os.getpid()).encode()
    for path in procs:
        fd = os.open(path, os.O_WRONLY)
        os.write(fd, pid)
        os.close(fd)
    set_rlimits(cpu_seconds)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="confine")
    parser.add_argument("--join", action="append", default=[], help="a cgroup.procs file")
    parser.add_argument("--create", help="make cgroups of this name with the limits below")
    parser.add_argument("--memory-bytes", type=int, default=0)
    parser.add_argument("--pids", type=int, default=256)
    parser.add_argument("--cpus", type=float, default=1.0)
    parser.add_argument("--cpu-seconds", type=int, default=0)
    parser.add_argument("--parent", type=int, help="killed when this process (the caller) dies")
    parser.add_argument(
        "--ended", help="a cgroup of this name ended: say whether the kernel stopped it at its "
        "memory limit, and remove it",
    )  # fmt: skip
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.ended:
        groups = existing(options.ended)
        print(json.dumps({"memory": hit_memory_limit(groups)}))
        kill_all(groups)
        remove(groups)
        return
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    procs = list(options.join)
    if options.create:
        groups = create(options.create, Limits(options.memory_bytes, options.pids, options.cpus))
        procs += [str(path / "cgroup.procs") for path in (groups or {}).values()]
    enter(procs, options.cpu_seconds, options.parent, ctypes.CDLL(None, use_errno=True))
    os.execvp(command[0], command)  # noqa: S606 (becoming the command is the point)


if __name__ == "__main__":
    main(sys.argv[1:])
