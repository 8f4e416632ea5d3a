"""Calls of generated (Vercel) deployments, counted where the runtime's hosts count theirs
(runtime/limits.ts): the tenant's invocations per minute in `rl:<tenant>:<minute>` and the
deployment's calls at once in `cc:<deployment>`, with the same scripts (read from
runtime/limits.ts), so one quota and one concurrency limit hold across both back ends. A call
takes one of each before it runs; its slot is a lease named for the call, kept alive for the
call's longest run and given back when it ends (or forgotten after that, if it never says)."""

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings

HOST_TTL_MS = 10_000  # as runtime/limits.ts: a holder not seen this long is forgotten


def script(name: str) -> str:
    """One of the runtime hosts' Lua scripts, read from their own source: one text for both."""
    source = (Path(settings.BASE_DIR) / "runtime" / "limits.ts").read_text()
    found = re.search(rf"const {name} = `(.*?)`;", source, re.S)
    if found is None:
        raise RuntimeError(f"runtime/limits.ts no longer defines {name}")
    return found.group(1)


TAKE_CALLS = script("TAKE_CALLS")
# KEYS: holdings, seen. ARGV: host, want (may be negative: a give-back), max, now, ttl.
TAKE_SLOTS = script("TAKE_SLOTS")

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.RUNTIME_REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
    return _client


@dataclass
class Refused:
    code: str  # the contract's: rate_limited, too_many_concurrent_invocations
    message: str
    retry_after: int


def take(
    tenant_id: int, per_minute: int, deployment: str, at_once: int, hold_ms: int
) -> str | Refused:
    """A lease for one call (its id), or why not. Without Redis, the call goes on uncounted
    (as a runtime host counts alone then; it is logged by the caller)."""
    now_ms = int(time.time() * 1000)
    minute = now_ms // 60_000
    r = client()
    if int(r.eval(TAKE_CALLS, 1, f"rl:{tenant_id}:{minute}", 1, per_minute)) <= 0:
        wait = 60 - (now_ms // 1000) % 60
        return Refused("rate_limited", "This tenant's invocation quota is used up for this "
                       f"minute; retry in {wait} s.", wait)  # fmt: skip
    lease = "call-" + secrets.token_hex(8)
    keys = (f"cc:{deployment}", f"cc:{deployment}:seen")
    if int(r.eval(TAKE_SLOTS, 2, *keys, lease, 1, at_once, now_ms, HOST_TTL_MS)) <= 0:
        return Refused("too_many_concurrent_invocations", f"This deployment already runs "
                       f"{at_once} invocations; retry shortly.", 1)  # fmt: skip
    # Seen until the call's longest run is over: the hosts' clean-up leaves it alone till then.
    r.hset(keys[1], lease, now_ms + hold_ms)
    return lease


def give_back(deployment: str, lease: str) -> None:
    keys = (f"cc:{deployment}", f"cc:{deployment}:seen")
    r = client()
    if r.hexists(keys[0], lease):
        r.eval(TAKE_SLOTS, 2, *keys, lease, -1, 0, int(time.time() * 1000), HOST_TTL_MS)
    r.hdel(keys[1], lease)
