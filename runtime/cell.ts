// One tenant's sandbox process: the isolates of that tenant's deployments (pool.ts) behind a
// process boundary. The host starts it confined by the operating system (confine.py: its own
// cgroup for memory of every kind, processes and a share of the CPU) and talks to it over a
// Unix socket it names in RUNTIME_CHANNEL (wire.ts). Whatever the tenant's code does here, to
// the point of a thread that cannot be stopped, ends with this process; the host and other
// tenants go on.
import process from "node:process";
import { statusOf } from "./contract.ts";
import type { FetchAnswer, FetchRequest } from "./egress.ts";
import { type Entry, KvCache } from "./kvcache.ts";
import {
  type BindingAnswer,
  type DeploymentConfig,
  type LogLine,
  type Pin,
  Pool,
  serveBindings,
  serveInternally,
} from "./pool.ts";
import { connectToHost, fromBase64, type Message, readMessages, toBase64, Writer } from "./wire.ts";

const env = (name: string, fallback: string) => Deno.env.get(name) ?? fallback;
const DOMAIN = env("RUNTIME_DOMAIN", "localhost").toLowerCase();
let inFlight = 0; // calls in flight: while there are, answers ready in one turn leave together
// Connected before the process gives up its permissions (pool.ts, Sandbox.start); a socket
// once open stays usable without them.
const channel = await connectToHost(env("RUNTIME_CHANNEL", ""));
const out = new Writer(channel.writable.getWriter(), () => inFlight > 0);

const configs = new Map<string, DeploymentConfig>();
type Waiter = { resolve: (code: string) => void; reject: (err: Error) => void };
const codeWaiting = new Map<string, Waiter[]>();
const internalWaiting = new Map<number, (answer: FetchAnswer) => void>();
const streams = new Map<string, ReadableStreamDefaultReader<Uint8Array>>();
let nextInternal = 1;

function loadCode(config: DeploymentConfig): Promise<string> {
  return new Promise((resolve, reject) => {
    const waiting = codeWaiting.get(config.artifact);
    if (waiting) return waiting.push({ resolve, reject });
    codeWaiting.set(config.artifact, [{ resolve, reject }]);
    out.send({ t: "code?", artifact: config.artifact });
  });
}

// Console lines go to the host as they are printed (its live tail and its reports), in the
// same write as whatever else this turn sends.
let lines: [string, string | null, string, LogLine][] = [];
function lateLog(deploymentId: string, requestId: string | null, fn: string, line: LogLine) {
  if (lines.push([deploymentId, requestId, fn, line]) === 1) {
    queueMicrotask(() => {
      out.send({ t: "lines", list: lines });
      lines = [];
    });
  }
}

const pool = new Pool(loadCode, lateLog, {
  idleMs: Number(env("RUNTIME_IDLE_SECONDS", "300")) * 1000,
  maxIsolates: Number(env("RUNTIME_MAX_ISOLATES", "200")),
  defaultMemoryMb: Number(env("RUNTIME_MEMORY_MB", "128")),
  spares: Number(env("RUNTIME_SPARES", "1")),
  memoryBudgetBytes: Number(env("RUNTIME_MEMORY_BUDGET_MB", "1024")) * 1024 * 1024,
}, (message) => {
  // A call held its thread past its limit and its isolate was told to stop; the thread may
  // run on (a regular expression that backtracks for minutes, a long synchronous hash), and
  // only ending this process is sure to stop it. What was answered goes out first.
  out.send({ t: "stuck", message });
  setTimeout(() => out.drain().finally(() => Deno.exit(75)), 0); // after this turn's answers
});
pool.warmSpare();

// --- bindings (ctx.kv, ctx.enqueue) -----------------------------------------------------------
// Reads come from this process's cache when they can (kvcache.ts says how fresh); everything
// else goes to the host, which asks the control plane for the deployment (the host checks it
// gave this process that deployment). What the code did is counted for the tenant's usage.
const cache = new KvCache(
  Number(env("RUNTIME_KV_CACHE_MS", "1000")),
  Number(env("RUNTIME_KV_CACHE_MB", "16")) * 1024 * 1024,
);
const boundWaiting = new Map<number, (answer: { status: number; body: Record<string, unknown> }) => void>();
let nextBound = 1;
const operations = { reads: 0, writes: 0 };

function viaHost(d: string, path: "kv" | "enqueue" | "steps" | "events", req: Record<string, unknown>) {
  const n = nextBound++;
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve) => {
    boundWaiting.set(n, resolve);
    out.send({ t: "bind", n, d, path, req });
  });
}

function refused(answer: { status: number; body: Record<string, unknown> }): BindingAnswer {
  const error = (answer.body?.error ?? {}) as { code?: string; message?: string };
  return {
    ok: false,
    code: error.code ?? "control_plane_unavailable",
    message: error.message ?? `The control plane answered ${answer.status}.`,
  };
}

/** The entry as the isolate gets it: its own copy of the bytes, moved to it. */
function handed(entry: Entry): BindingAnswer {
  if (!entry.found) return { ok: true, value: { found: false } };
  const value = entry.value!.slice().buffer;
  return { ok: true, value: { ...entry, value }, transfer: [value] };
}

// deno-lint-ignore no-explicit-any
serveBindings(async (config: DeploymentConfig, asked: any): Promise<BindingAnswer> => {
  if (asked.t === "step") {
    if (!asked.run) {
      return {
        ok: false,
        code: "not_a_run",
        message:
          "ctx.step keeps its steps in a durable run: call this function as a run (Prefer: respond-async, a schedule, ctx.enqueue).",
      };
    }
    const { run, request, op, name, result, error, until, event, match, started, lines } = asked;
    const answer = await viaHost(config.id, "steps", {
      run,
      request,
      op,
      name,
      result,
      error,
      until,
      event,
      match,
      started,
      lines,
    });
    return answer.status === 200 ? { ok: true, value: answer.body } : refused(answer);
  }
  if (asked.t === "event") {
    const { name, payload, to, worker } = asked;
    const answer = await viaHost(config.id, "events", { name, payload, run: to, worker });
    return answer.status === 202 ? { ok: true, value: answer.body } : refused(answer);
  }
  if (asked.t === "enqueue") {
    const { function: fn, payload, worker, delay, idempotencyKey } = asked;
    const answer = await viaHost(config.id, "enqueue", { function: fn, payload, worker, delay, idempotencyKey });
    return answer.status === 202 ? { ok: true, value: answer.body } : refused(answer);
  }
  const namespace = (config.kv ?? {})[asked.b];
  if (namespace === undefined) {
    return {
      ok: false,
      code: "kv_binding_not_found",
      message: `This deployment has no key-value binding named ${
        String(asked.b)
      }: bind a namespace to the worker, then deploy again.`,
    };
  }
  const { op, key } = asked;
  if (op === "get") {
    operations.reads++;
    const hit = cache.get(namespace, key);
    if (hit) return handed(hit);
  } else if (op === "list") operations.reads++;
  else operations.writes++;
  const req: Record<string, unknown> = { binding: asked.b, op, key };
  let bytes: Uint8Array | undefined;
  if (op === "put") {
    bytes = new Uint8Array(asked.value as ArrayBuffer);
    Object.assign(req, {
      value: toBase64(bytes),
      ttl: asked.ttl,
      metadata: asked.metadata,
      ifVersion: asked.ifVersion,
    });
  } else if (op === "list") Object.assign(req, { prefix: asked.prefix, cursor: asked.cursor, limit: asked.limit });
  const answer = await viaHost(config.id, "kv", req);
  if (answer.status !== 200) {
    if (op === "put") cache.forget(namespace, key);
    return refused(answer);
  }
  const body = answer.body;
  if (op === "get") {
    const entry: Entry = body.found
      ? { ...body, found: true, value: fromBase64(body.value as string) } as Entry
      : { found: false };
    cache.set(namespace, key, entry);
    return handed(entry);
  }
  if (op === "put") {
    // What this process wrote is what it reads next (read-your-own-writes); a compare-and-set
    // that did not hold says nothing of the value there now.
    if (body.ok) {
      cache.set(namespace, key, {
        found: true,
        value: bytes!,
        metadata: asked.metadata ?? null,
        version: body.version as number,
        expiresAt: (body.expiresAt ?? null) as number | null,
      });
    } else cache.forget(namespace, key);
  } else if (op === "delete") cache.set(namespace, key, { found: false });
  return { ok: true, value: body };
});

// A call of one of the platform's workers goes back to the host, which serves it through the
// same door as any other caller (its key, its quota, the callee's own sandbox).
serveInternally((req: FetchRequest, pin?: Pin): Promise<FetchAnswer> | null => {
  let hostname: string;
  try {
    hostname = new URL(req.url).hostname.toLowerCase();
  } catch {
    return null;
  }
  if (!hostname.endsWith(`.${DOMAIN}`)) return null;
  const n = nextInternal++;
  return new Promise((resolve) => {
    internalWaiting.set(n, resolve);
    const body = req.body ? toBase64(new Uint8Array(req.body)) : null;
    out.send({ t: "ifetch", n, req: { ...req, body }, pin });
  });
});

async function call(msg: Message) {
  const id = msg.id as string;
  const config = configs.get(msg.d as string);
  if (!config) {
    out.send({
      t: "done",
      id,
      cold: false,
      outcome: {
        status: statusOf("isolate_unavailable"),
        code: "isolate_unavailable",
        logs: [],
        error: { name: "Error", message: "The sandbox did not know this deployment; retry.", stack: "" },
      },
    });
    return;
  }
  let cold = true; // the call waited for its deployment to be loaded
  let outcome;
  inFlight++;
  try {
    const running = pool.running(config);
    const isolate = running ?? await pool.get(config);
    cold = running === undefined;
    const http = msg.http as
      | { method: string; url: string; headers: [string, string][]; body: string | null }
      | undefined;
    outcome = await isolate.call(
      id,
      msg.fn as string,
      msg.payload,
      msg.timeoutMs as number,
      http ? { ...http, body: http.body === null ? null : fromBase64(http.body).buffer as ArrayBuffer } : undefined,
      msg.pin as Pin | undefined,
    );
  } catch (err) {
    outcome = {
      status: statusOf("isolate_unavailable"),
      code: "isolate_unavailable" as const,
      logs: [],
      error: { name: "Error", message: `The deployment could not be started: ${(err as Error).message}`, stack: "" },
    };
  }
  inFlight--;
  // The call's lines went to the host as they were printed ("lines"): it puts them in the
  // answer itself, so they cross the boundary once.
  const { response, logs: _logs, ...rest } = outcome;
  if (!response) return out.send({ t: "done", id, cold, outcome: rest });
  const { status, statusText, headers, body } = response;
  out.send({ t: "head", id, cold, outcome: rest, status, statusText, headers, hasBody: body !== null });
  if (!body) return;
  const reader = body.getReader();
  streams.set(id, reader);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      out.send({ t: "chunk", id, b: toBase64(value) });
    }
    out.send({ t: "end", id });
  } catch (err) {
    out.send({ t: "fail", id, message: (err as Error).message });
  } finally {
    streams.delete(id);
  }
}

function receive(msg: Message) {
  switch (msg.t) {
    case "call":
      call(msg);
      break;
    case "config": {
      const config = msg.config as DeploymentConfig;
      configs.set(config.id, config);
      break;
    }
    case "code": {
      const waiting = codeWaiting.get(msg.artifact as string) ?? [];
      codeWaiting.delete(msg.artifact as string);
      for (const { resolve, reject } of waiting) {
        if (typeof msg.code === "string") resolve(msg.code);
        else reject(new Error(msg.error as string));
      }
      break;
    }
    case "bound": {
      boundWaiting.get(msg.n as number)?.({ status: msg.status as number, body: msg.body as Record<string, unknown> });
      boundWaiting.delete(msg.n as number);
      break;
    }
    case "ifetched": {
      const answer = msg.answer as FetchAnswer & { body?: string };
      internalWaiting.get(msg.n as number)?.(
        answer.ok ? { ...answer, body: fromBase64(answer.body as unknown as string).buffer as ArrayBuffer } : answer,
      );
      internalWaiting.delete(msg.n as number);
      break;
    }
    case "cancel":
      streams.get(msg.id as string)?.cancel().catch(() => {});
      streams.delete(msg.id as string);
      break;
    case "preload": {
      // Said when it is loaded (or could not be: a call tries again and says why).
      const config = configs.get(msg.d as string);
      const loaded = () => out.send({ t: "preloaded", d: msg.d });
      if (config) pool.get(config).then((isolate) => isolate.loaded).then(loaded, loaded);
      else loaded();
      break;
    }
    case "stats?":
      out.send({ t: "stats", n: msg.n, isolates: pool.size, spares: pool.readySpares });
      break;
  }
}

// What this process uses, all its threads together, for the host to watch and to charge.
setInterval(() => {
  const { user, system } = process.cpuUsage();
  out.send({
    t: "usage",
    cpuMs: (user + system) / 1000,
    rss: Deno.memoryUsage().rss,
    kv: [operations.reads, operations.writes],
  });
  operations.reads = operations.writes = 0;
}, 250);

out.send({ t: "ready" });
// The host is this process's only reason to be: when its end of the channel closes (it
// stopped, or was killed), this process ends too.
readMessages(channel.readable, receive).finally(() => Deno.exit(0));
