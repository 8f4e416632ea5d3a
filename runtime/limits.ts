// Limits that hold across host processes and machines, counted in Redis (REDIS_URL).
//
// Both limits are leases: a host takes a share from Redis, spends it locally, and asks again
// when it runs out, so the warm path touches Redis once per share, not once per call.
//
// * Invocations per minute, per tenant: the key `rl:<tenant>:<minute>` counts what all hosts
//   have taken this minute. A host asks for up to LEASE calls at a time and Redis grants only
//   what is left (one script, atomic), so all hosts together never exceed the quota; what a
//   host took but did not use by the minute's end is lost (at most one share per host and
//   minute: a tenant may get slightly less than its quota, never more).
// * Calls at once, per deployment: the hash `cc:<deployment>` holds the slots each host holds,
//   and `cc:<deployment>:seen` when each host last said it was alive. A host takes slots one
//   share at a time while its calls need them and gives back the ones it no longer uses after
//   a short while; a host that stops (killed, cut off) stops being counted after HOST_TTL_MS.
//
// Without Redis (not configured, or unreachable) each host counts alone, as before: the quota
// divided by the number of host processes of this machine, the concurrency per isolate.
import { createClient } from "npm:redis@6.3.1";

type Client = ReturnType<typeof createClient>;

const HOST = crypto.randomUUID(); // this host process, as Redis knows it
const HOST_TTL_MS = 10_000;
const RELEASE_AFTER_MS = 250; // slots unused this long (50 ms more at most) go back to the other hosts

const TAKE_CALLS = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], grant)
redis.call('PEXPIRE', KEYS[1], 120000)
return grant`;

// KEYS: holdings, seen. ARGV: host, want (may be negative: a give-back), max, now, ttl.
const TAKE_SLOTS = `
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local held = 0
local seen = redis.call('HGETALL', KEYS[2])
for i = 1, #seen, 2 do
  if tonumber(seen[i + 1]) < now - ttl then
    redis.call('HDEL', KEYS[1], seen[i])
    redis.call('HDEL', KEYS[2], seen[i])
  end
end
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do held = held + tonumber(v) end
local want = tonumber(ARGV[2])
local grant = want
if want > 0 then grant = math.min(want, tonumber(ARGV[3]) - held) end
if grant < 0 then grant = 0 end
if grant ~= 0 or want < 0 then
  local mine = redis.call('HINCRBY', KEYS[1], ARGV[1], want > 0 and grant or want)
  if mine <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
end
redis.call('HSET', KEYS[2], ARGV[1], now)
redis.call('PEXPIRE', KEYS[1], ttl * 6)
redis.call('PEXPIRE', KEYS[2], ttl * 6)
return grant`;

let client: Client | null = null;
let connected = false;
let told = false; // the operator has been told Redis is away (once until it is back)

let clockOffsetMs = 0; // the quota's minutes are the clock's, shifted by this (tests only)

/** `offsetMs` shifts the clock the quota's minutes are counted by: a test starts the runtime
 * at the beginning of one instead of waiting for it (RUNTIME_CLOCK_OFFSET_MS). */
export function connectLimits(url: string, offsetMs = 0) {
  clockOffsetMs = offsetMs;
  if (!url) return;
  client = createClient({
    url,
    socket: { connectTimeout: 2_000, reconnectStrategy: (tries: number) => Math.min(tries * 200, 2_000) },
    disableOfflineQueue: true, // while Redis is away, count locally instead of waiting
  });
  client.on("ready", () => {
    connected = true;
    told = false;
  });
  client.on("end", () => (connected = false));
  client.on("error", (err: Error) => {
    if (!told) console.error(`runtime: Redis unreachable (${err.message}); limits counted per host until it is back`);
    told = true;
    connected = false;
  });
  client.connect().catch(() => {}); // told by the error event; reconnects by itself
  // Holding slots says this host is alive; a host that stops holding them is forgotten.
  setInterval(() => {
    for (const [deployment, slots] of concurrency) {
      if (slots.held > 0) void take(deployment, 0, 0);
    }
  }, HOST_TTL_MS / 3);
}

/** Now, on the clock the quota's minutes are counted by. */
export const minuteClock = () => Date.now() + clockOffsetMs;

export const redisLimits = () => client !== null && connected;

// --- invocations per minute, per tenant ------------------------------------------------------

type Share = { minute: number; left: number; asking: Promise<number> | null };
const shares = new Map<number, Share>();

/** Whether one more call of `tenant` fits its quota this minute; null when Redis cannot say
 * (the caller counts locally). Answered at once while this host's share lasts. */
export function takeCall(tenant: number, perMinute: number): boolean | null | Promise<boolean | null> {
  if (!redisLimits()) return null;
  const minute = Math.floor((Date.now() + clockOffsetMs) / 60_000);
  let share = shares.get(tenant);
  if (!share || share.minute !== minute) {
    share = { minute, left: 0, asking: null };
    shares.set(tenant, share);
  }
  if (share.left > 0) {
    share.left--;
    return true;
  }
  return refill(tenant, perMinute, share);
}

async function refill(tenant: number, perMinute: number, share: Share): Promise<boolean | null> {
  const minute = share.minute;
  while (share.left <= 0) {
    if (!share.asking) {
      const want = Math.max(1, Math.min(100, Math.ceil(perMinute / 50)));
      // What is granted is added once, here; every call waiting on it then takes its own.
      share.asking = client!.eval(TAKE_CALLS, {
        keys: [`rl:${tenant}:${minute}`],
        arguments: [String(want), String(perMinute)],
      })
        .then((granted) => (share.left += Number(granted), Number(granted)))
        .finally(() => (share.asking = null));
    }
    let granted: number;
    try {
      granted = await share.asking;
    } catch {
      return null;
    }
    if (granted <= 0 && share.left <= 0) return false;
  }
  share.left--;
  return true;
}

// --- calls at once, per deployment ------------------------------------------------------------

type Slots = {
  held: number;
  used: number;
  asking: Promise<number> | null;
  lastLeft: number; // when a call last gave one back (performance.now())
};
const concurrency = new Map<string, Slots>();

async function take(deployment: string, want: number, max: number): Promise<number> {
  return Number(
    await client!.eval(TAKE_SLOTS, {
      keys: [`cc:${deployment}`, `cc:${deployment}:seen`],
      arguments: [HOST, String(want), String(max), String(Date.now()), String(HOST_TTL_MS)],
    }),
  );
}

/** Takes one of the deployment's `max` slots: true, false when all are in use on some host,
 * null when Redis cannot say. Every true is followed by one `leaveSlot`. Answered at once
 * while this host holds a free slot. */
export function enterSlot(deployment: string, max: number): boolean | null | Promise<boolean | null> {
  if (!redisLimits()) return null;
  let slots = concurrency.get(deployment);
  if (!slots) {
    slots = { held: 0, used: 0, asking: null, lastLeft: 0 };
    concurrency.set(deployment, slots);
    sweepWhileHeld();
  }
  if (slots.used < slots.held) {
    slots.used++;
    return true;
  }
  return moreSlots(deployment, max, slots);
}

async function moreSlots(deployment: string, max: number, slots: Slots): Promise<boolean | null> {
  while (slots.used >= slots.held) {
    if (!slots.asking) {
      const want = Math.max(1, Math.min(10, Math.ceil(max / 8)));
      slots.asking = take(deployment, want, max)
        .then((granted) => (slots.held += Math.max(0, granted), granted))
        .finally(() => (slots.asking = null));
    }
    let granted: number;
    try {
      granted = await slots.asking;
    } catch {
      return null;
    }
    if (granted <= 0 && slots.used >= slots.held) return false;
  }
  slots.used++;
  return true;
}

export function leaveSlot(deployment: string) {
  const slots = concurrency.get(deployment);
  if (!slots) return;
  slots.used--;
  slots.lastLeft = performance.now(); // no timer per call: one sweep gives back what rests
}

// The sweep runs only while some deployment is counted: a host nobody calls wakes for nothing.
let sweeping: ReturnType<typeof setInterval> | null = null;
function sweepWhileHeld() {
  sweeping ??= setInterval(() => {
    releaseResting();
    if (concurrency.size === 0) {
      clearInterval(sweeping!);
      sweeping = null;
    }
  }, RELEASE_AFTER_MS / 5);
}

/** Gives back the slots no call took for RELEASE_AFTER_MS, for the other hosts, and forgets
 * the deployments that hold none. */
function releaseResting() {
  if (!redisLimits()) return;
  const cutoff = performance.now() - RELEASE_AFTER_MS;
  for (const [deployment, slots] of concurrency) {
    if (slots.held === 0 && slots.used === 0 && !slots.asking) {
      concurrency.delete(deployment); // nothing held: a deployment called once is not kept
      continue;
    }
    const spare = slots.held - slots.used;
    if (spare <= 0 || slots.lastLeft > cutoff || slots.asking) continue;
    slots.held -= spare;
    take(deployment, -spare, 0).catch(() => (slots.held += spare));
  }
}

// --- answering the control plane ------------------------------------------------------------

/** Adds this host to the list `key` names (the control plane waits on it, deployments.announce
 * .preload); nothing when Redis cannot be reached (the control plane stops waiting soon). */
export function reply(key: string) {
  if (!redisLimits()) return;
  client!.multi().rPush(key, HOST).pExpire(key, 60_000).exec().catch(() => {});
}

// --- being seen by operators -----------------------------------------------------------------
// Every few seconds a host writes how it is doing under `runtime:host:<id>` (expiring, so a
// host that stops disappears from the operators' console by itself).
export const HEARTBEAT_MS = 5_000;

export function heartbeat(state: () => Record<string, unknown>) {
  setInterval(() => {
    if (!redisLimits()) return;
    const value = JSON.stringify({ ...state(), id: HOST, at: Date.now() });
    client!.set(`runtime:host:${HOST}`, value, { PX: HEARTBEAT_MS * 3 }).catch(() => {});
  }, HEARTBEAT_MS);
}
