// The invocation handler of a generated deployment: the local runtime's contract (answers,
// status codes, error codes), console lines captured per request with sequence numbers,
// and pushed to the platform while the function runs.
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { inspect } from "node:util";
import { after } from "next/server";
import { enqueue, kvBindings, sendEvent } from "./bindings";
import contract from "./contract.json";
import config from "./deployment.json";
import { pinnedFetch, pinOf } from "./peers";
import { runFunction } from "./step";
import { inStep, noSteps, signedRun, StepParked, type Steps, stepsFor } from "./steps";

type Line = { seq: number; level: string; message: string; timestamp: string };
export type Call = {
  requestId: string;
  fn: string;
  seq: number;
  lines: Line[];
  dropped: number;
  pending: Line[];
  waits?: Promise<unknown>[]; // work after the answer (ctx.waitUntil)
  steps?: Steps; // a run's call: its durable steps
  lease?: string; // its share of the quota and of the calls at once (given back at the end)
  pin?: { generation: number | null }; // the release its fetches of peers see (peers.ts)
};

export const calls = new AsyncLocalStorage<Call>();
globalThis.fetch = pinnedFetch(globalThis.fetch, () => calls.getStore()?.pin, config.ingest.token);
const original = { ...console };
const LEVELS: Record<string, string> = {
  log: "log", info: "info", debug: "debug", trace: "debug", warn: "warn", error: "error",
};

function format(args: unknown[]): string {
  return inTenantFiles(args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 6 }))).join(" "));
}

// Stack traces name the tenant's files: a position in a compiled chunk is looked up in the
// chunk's source map (next.config.ts has Next.js write them; Node's own SourceMap decodes),
// and the program's files, under lib/worker/ in this project, read as uploaded: `lib/page.ts:3:9`.
const maps = new Map<string, SourceMap | null>();
function mapOf(file: string): SourceMap | null {
  if (!maps.has(file)) {
    let found: SourceMap | null = null;
    try {
      found = new SourceMap(JSON.parse(readFileSync(`${file}.map`, "utf8")));
    } catch {
      // no map beside it (Next.js's own code): the position stays as it is
    }
    maps.set(file, found);
  }
  return maps.get(file)!;
}
const COMPILED = /(\/[^\s()]+\.js):(\d+):(\d+)/g;
const IN_PROGRAM = /(?:[^\s()]*\/)?lib\/worker\/([^\s():]+:\d+:\d+)/g;
export function inTenantFiles(text: string): string {
  return text
    .replace(COMPILED, (whole: string, file: string, line: string, column: string) => {
      const origin = mapOf(file)?.findOrigin(Number(line), Number(column));
      if (!origin || !("fileName" in origin) || !origin.fileName) return whole;
      const name = origin.fileName.includes("lib/worker/") || !origin.fileName.startsWith("../")
        ? origin.fileName
        : `runtime:${origin.fileName.replace(/^(\.\.\/)+/, "")}`; // this project's own code
      return `${name}:${origin.lineNumber}:${origin.columnNumber}`;
    })
    .replace(IN_PROGRAM, "$1");
}

function capped(message: string): string {
  const bytes = Buffer.byteLength(message);
  if (bytes <= config.maxLineBytes) return message;
  const kept = Buffer.from(message).subarray(0, config.maxLineBytes).toString().replace(/\uFFFD$/, "");
  return `${kept} … [truncated: the line was ${bytes} bytes, the limit is ${config.maxLineBytes}]`;
}

function record(call: Call, level: string, message: string) {
  const step = inStep.getStore();
  if (step && step.lines.length < 1000) step.lines.push(call.seq);
  const line = { seq: call.seq++, level, message, timestamp: new Date().toISOString() };
  call.lines.push(line);
  call.pending.push(line);
  schedulePush(call);
}

for (const [method, level] of Object.entries(LEVELS)) {
  (console as any)[method] = (...args: unknown[]) => {
    const call = calls.getStore();
    if (!call) return (original as any)[method](...args);
    if (call.lines.length - call.dropped >= config.maxLogLines) {
      call.dropped++;
      return;
    }
    record(call, level, capped(format(args)));
  };
}

// --- pushing lines to the platform's ingest (live tail) -----------------------------------
const timers = new WeakMap<Call, ReturnType<typeof setTimeout>>();

function schedulePush(call: Call) {
  if (!config.ingest.url || timers.has(call)) return;
  timers.set(call, setTimeout(() => {
    timers.delete(call);
    void push(call, []);
  }, 25));
}

export async function push(call: Call, invocations: object[]): Promise<void> {
  const lines = call.pending.splice(0);
  if (!config.ingest.url || (lines.length === 0 && invocations.length === 0)) return;
  // The call's record goes with its lease: the platform gives the lease back as it stores it.
  const lease: Record<string, string> = invocations.length && call.lease ? { "x-call-lease": call.lease } : {};
  const body = JSON.stringify({
    invocations,
    logs: lines.map((l) => ({ ...l, requestId: call.requestId, function: call.fn, deploymentId: config.id })),
  });
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      const res = await fetch(config.ingest.url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${config.ingest.token}`, ...lease },
        body,
        signal: AbortSignal.timeout(5000),
      });
      if (res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429)) return;
    } catch {
      // network error: retry below
    }
    await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
  }
}

// --- the deployment's secrets, as process.env -----------------------------------------------
// Fetched from the platform at cold start with this deployment's own credential: nothing in
// the shared project's environment or files opens another deployment's secrets. They are in
// process.env before the first call runs (not yet while the module's top level runs).
type Settings = typeof config & {
  secretsUrl?: string | null; keysUrl?: string; runsUrl?: string; accessUrl?: string;
};
const own = config as Settings;
let secrets: Promise<boolean> | null = null;
// The deployment's plain settings and secrets alone (process.env also holds Vercel's own),
// frozen once when fetched: every call's ctx.env is this same object.
let ownEnv: Readonly<Record<string, string>> = Object.freeze({});

/** What a call's code gets beside its payload or request (as on the local runtime). */
export function contextFor(call: Call) {
  const waits = (call.waits ??= []);
  return Object.freeze({
    env: ownEnv,
    requestId: call.requestId,
    kv: kvBindings,
    enqueue,
    sendEvent,
    step: call.steps ? stepsFor(call.steps, call.requestId) : noSteps,
    waitUntil(work: Promise<unknown>) {
      waits.push(Promise.resolve(work).catch((err) => {
        console.error("Work after the answer (ctx.waitUntil) failed:", err);
      }));
    },
  });
}

/** After the answer: the call's work after the answer settles (Vercel's own `after` keeps the
 * function alive for it), then its lines and record go to the platform. */
export async function finish(call: Call, invocations: object[]): Promise<void> {
  const waits = call.waits ?? [];
  for (let i = 0; i < waits.length; i++) await waits[i]; // more may be added meanwhile
  await push(call, invocations); // with the lease (its work after the answer counted in the call)
}

async function fetchSecrets(): Promise<boolean> {
  if (!own.secretsUrl) return true;
  try {
    const res = await fetch(own.secretsUrl, {
      headers: { authorization: `Bearer ${config.ingest.token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`the platform answered ${res.status}`);
    const env = (await res.json()).env;
    Object.assign(process.env, env);
    ownEnv = Object.freeze({ ...env });
    return true;
  } catch (err) {
    original.error(`this deployment's secrets could not be fetched: ${(err as Error).message}`);
    secrets = null; // the next call tries again
    return false;
  }
}

export function secretsReady(): Promise<boolean> {
  secrets ??= fetchSecrets();
  return secrets;
}
void secretsReady();

// --- answers -------------------------------------------------------------------------------
function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

// Error codes and their statuses come from the platform's contract (contract.json).
type ErrorCode = keyof typeof contract.errors;
export const HEADERS = contract.headers;

export function failure(code: ErrorCode, message: string, headers: Record<string, string> = {}): Response {
  return json(contract.errors[code], { error: { code, message } }, headers);
}

function failed(code: ErrorCode, message: string, stack = "") {
  return { status: contract.errors[code], body: { error: { code, message, stack } } };
}

// --- who may call this deployment, now --------------------------------------------------
// The platform says, with this deployment's own credential, at most every 2 s (as the local
// runtime's hosts learn it): whether its tenant is served (not suspended), whether its worker
// is public, and the digests of the invocation secrets that open it. A private worker is
// called with one of those secrets or with a platform API key that has the invoke scope
// (also checked with the platform, remembered 2 s). Only the platform's own secret may name
// the call's trigger (a run's attempt, a schedule). Without an answer from the platform for
// longer than that, nothing is served (fail closed).
type Access = { serving: boolean; message: string; public: boolean; secrets: string[]; platform: string };
let access: { value: Access; expires: number } | null = null;

async function accessNow(): Promise<Access> {
  if (access && access.expires > Date.now()) return access.value;
  const res = await fetch(own.accessUrl ?? "", {
    headers: { authorization: `Bearer ${config.ingest.token}` },
    signal: AbortSignal.timeout(5000),
  });
  if (!res.ok) throw new Error(`the platform answered ${res.status}`);
  const value = (await res.json()) as Access;
  access = { value, expires: Date.now() + 2000 };
  return value;
}

const keys = new Map<string, { value: { secretHash: string; scopes: string[] } | null; expires: number }>();

async function keyInfo(prefix: string) {
  const hit = keys.get(prefix);
  if (hit && hit.expires > Date.now()) return hit.value;
  const res = await fetch(`${own.keysUrl}${encodeURIComponent(prefix)}`, {
    headers: { authorization: `Bearer ${config.ingest.token}` },
    signal: AbortSignal.timeout(5000),
  });
  const value = res.ok ? await res.json() : null;
  if (!res.ok && res.status !== 404) throw new Error(`the platform answered ${res.status}`);
  keys.set(prefix, { value, expires: Date.now() + 2000 });
  return value;
}

const sameDigest = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
const sha256 = (text: string) => createHash("sha256").update(text).digest();

async function keyOpens(request: Request): Promise<boolean> {
  const token = (request.headers.get("authorization") ?? "").replace(/^Bearer /, "").trim();
  const prefix = token.match(/^wk_([0-9a-f]+)_/)?.[1];
  if (!prefix || !own.keysUrl) return false;
  let key;
  try {
    key = await keyInfo(prefix);
  } catch {
    return false;
  }
  if (!key || !key.scopes.includes("invoke")) return false;
  return sameDigest(sha256(token), Buffer.from(key.secretHash, "hex"));
}

/** Whether this call may go on: null, or the answer that refuses it; and whether the platform
 * itself made it (then its trigger header is believed). */
export async function admit(request: Request): Promise<{ refused: Response | null; platform: boolean }> {
  let now: Access;
  try {
    now = await accessNow();
  } catch (err) {
    return {
      refused: failure("control_plane_unavailable",
        `The platform could not say who may call this deployment (${(err as Error).message}); retry.`),
      platform: false,
    };
  }
  if (!now.serving) return { refused: failure("tenant_suspended", now.message), platform: false };
  const given = request.headers.get(HEADERS.invokeSecret);
  const digest = given === null ? null : sha256(given);
  const platform = digest !== null && sameDigest(digest, Buffer.from(now.platform, "hex"));
  if (now.public || platform) return { refused: null, platform };
  if (digest !== null) {
    const opens = now.secrets.some((s) => sameDigest(digest, Buffer.from(s, "hex")));
    return { refused: opens ? null : failure("unauthorized", UNAUTHORIZED), platform: false };
  }
  return { refused: (await keyOpens(request)) ? null : failure("unauthorized", UNAUTHORIZED), platform: false };
}

// --- the tenant's quota and the deployment's calls at once ------------------------------------
// Counted by the control plane with the platform's runtime hosts (one quota, one limit on
// both back ends): a call takes a lease before it runs; the lease goes back with its record.
type Settings2 = { callsUrl?: string };
export async function takeLease(call: Call): Promise<Response | null> {
  const url = (config as Settings2).callsUrl;
  if (!url) return null;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${config.ingest.token}` },
      signal: AbortSignal.timeout(5000),
    });
  } catch (err) {
    return failure("control_plane_unavailable",
      `The platform could not count this call against its limits (${(err as Error).message}); retry.`);
  }
  const body = await res.json().catch(() => ({}));
  if (res.ok) {
    call.lease = body.lease || undefined;
    return null;
  }
  const code = (body?.error?.code ?? "control_plane_unavailable") as ErrorCode;
  const retry = res.headers.get("retry-after");
  return failure(code in contract.errors ? code : "control_plane_unavailable",
    body?.error?.message ?? `The platform answered ${res.status}.`, retry ? { "retry-after": retry } : {});
}

/** How the call is recorded: what the platform named (a run's attempt, a schedule), else http. */
export function triggerOf(request: Request, platform: boolean): string {
  const named = request.headers.get(HEADERS.trigger) ?? "";
  return platform && (contract.triggers as string[]).includes(named) ? named : "http";
}

// The first call this instance serves is its cold start (recorded as the local runtime does).
let served = 0;
export const coldStart = () => served++ === 0;

export class Timeout extends Error {}

export function describe(err: unknown) {
  if (err instanceof Error) return { message: err.message, stack: inTenantFiles(err.stack ?? "") };
  return { message: String(err), stack: "" };
}

export const UNAUTHORIZED = `This deployment is private: send \`Authorization: Bearer <API key>\` with a key that has the invoke scope, or one of its worker's invocation secrets in the ${HEADERS.invokeSecret} header.`;

// An async call: the platform stores it as a run (retried by its policy, readable at the
// status URL) before the caller hears 202; the same contract as the local runtime.
async function handOver(request: Request, fn: string, payload: string): Promise<Response> {
  const key = (request.headers.get("authorization") ?? "").match(/^Bearer wk_([0-9a-f]+)_/)?.[1] ?? "";
  const idempotencyKey = request.headers.get(HEADERS.idempotencyKey) ?? "";
  try {
    const res = await fetch(own.runsUrl ?? "", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${config.ingest.token}` },
      body: JSON.stringify({ function: fn, payload, idempotencyKey, key }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await res.json();
    if (res.status !== 202) return json(res.status, body);
    const { runId, status, statusUrl } = body;
    return json(202, { runId, status, statusUrl }, { location: statusUrl, "preference-applied": "respond-async" });
  } catch (err) {
    return failure("control_plane_unavailable",
      `The run could not be stored, so it was not accepted (${(err as Error).message}); send it again, with the same Idempotency-Key.`);
  }
}

export async function handleInvoke(request: Request, fn: string): Promise<Response> {
  const { refused, platform } = await admit(request);
  if (refused) return refused;
  if (!(await secretsReady())) {
    return failure("isolate_unavailable", "This deployment's secrets could not be fetched from the platform; retry.");
  }
  if (!config.functions.includes(fn)) {
    return failure("function_not_found",
      `This deployment has no exported function named "${fn}". Its functions: ${config.functions.join(", ")}.`);
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > config.maxBodyBytes) {
    return failure("payload_too_large", `The request body is larger than ${config.maxBodyBytes} bytes.`);
  }
  const text = await request.text();
  if (Buffer.byteLength(text) > config.maxBodyBytes) {
    return failure("payload_too_large", `The request body is larger than ${config.maxBodyBytes} bytes.`);
  }
  let payload: unknown = null;
  try {
    if (text.trim()) payload = JSON.parse(text);
  } catch (err) {
    return failure("invalid_json", `The request body is not valid JSON: ${(err as Error).message}`);
  }
  const prefer = request.headers.get(HEADERS.prefer) ?? "";
  if (/\brespond-async\b/i.test(prefer) || new URL(request.url).searchParams.get("async") === "1") {
    return handOver(request, fn, text.trim() ? text : "null");
  }

  const requestId = `req_${randomUUID().replaceAll("-", "")}`;
  const call: Call = { requestId, fn, seq: 0, lines: [], dropped: 0, pending: [], pin: pinOf(request) };
  const over = await takeLease(call);
  if (over) return over;
  const cold = coldStart();
  const run = signedRun(request.headers.get(HEADERS.run));
  if (run) call.steps = { run };
  const startedAt = new Date();
  const t0 = performance.now();
  let status = 200;
  let body: Record<string, unknown>;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout()), config.timeoutMs);
    });
    const value = await calls.run(call, () => Promise.race([runFunction(fn, payload, contextFor(call)), deadline]));
    const result = value === undefined ? null : value;
    try {
      const json = JSON.stringify(result);
      // Length in UTF-16 units, as the local runtime measures it: a cheap bound of the bytes.
      if (json !== undefined && json.length > config.maxResultBytes) {
        ({ status, body } = failed("result_too_large", `The function's result is larger than ${config.maxResultBytes} bytes.`));
      } else {
        body = { result };
      }
    } catch (err) {
      ({ status, body } = failed("result_not_serializable", `The function's result is not JSON: ${(err as Error).message}`));
    }
  } catch (err) {
    if (err instanceof Timeout) {
      ({ status, body } = failed("timeout", `The function did not finish within ${config.timeoutMs} ms and was stopped.`));
    } else {
      const { message, stack } = describe(err);
      ({ status, body } = failed("function_error", message, stack));
    }
  } finally {
    clearTimeout(timer);
  }
  if (call.steps?.parked) {
    // A step parked the run (whatever the code did with the signal): the call ends here.
    const { until, kind } = call.steps.parked;
    ({ status, body } = failed("run_parked", new StepParked(until).message));
    Object.assign((body as any).error, { parked: { until, kind } });
  } else if (call.steps?.platform) {
    ({ status, body } = failed("control_plane_unavailable",
      `The run's journal could not be reached (${call.steps.platform}); the attempt is tried again.`));
  }
  if (call.dropped > 0) {
    record(call, "warn", `truncated: ${call.dropped} lines dropped (the limit is ${config.maxLogLines} lines per invocation)`);
  }
  const durationMs = Math.round((performance.now() - t0) * 100) / 100;
  const error = (body as any).error;
  const invocation = {
    requestId, deploymentId: config.id, function: fn, trigger: triggerOf(request, platform), cold,
    status: status === 200 ? "ok" : status === 504 ? "timeout" : "error",
    statusCode: status, durationMs, startedAt: startedAt.toISOString(), errorMessage: error?.message ?? "",
  };
  // The rest of the lines and the invocation go out after the answer; the platform keeps
  // the function alive until they are sent.
  after(() => finish(call, [invocation]));
  return json(status, { ...body, logs: call.lines, durationMs, requestId }, { [HEADERS.requestId]: requestId });
}
