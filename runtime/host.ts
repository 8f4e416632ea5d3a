// The local data plane: serves deployment URLs, runs each deployment in its own isolate
// inside its tenant's sandbox process (cells.ts), and reports invocations and console lines
// to the control plane in the background. It runs no tenant code itself. It keeps no state of
// its own: deployments are learned from the control plane and cached.
import { readLimited } from "./body.ts";
import type { FetchAnswer, FetchRequest } from "./egress.ts";
import { type ErrorCode, HEADERS, statusOf, TRIGGERS } from "./contract.ts";
import {
  connectLimits,
  enterSlot,
  heartbeat,
  HEARTBEAT_MS,
  leaveSlot,
  minuteClock,
  reply,
  takeCall,
} from "./limits.ts";
import { Cells, Cooling } from "./cells.ts";
import { newRequestId } from "./ids.ts";
import { Journal } from "./journal.ts";
import { CpuCharges, Reporter, type Send } from "./reports.ts";
import { ControlPlane, type DomainRoutes, type KeyInfo, type Resolved } from "./control.ts";
import { LocalWindows, untilNextMinute } from "./rate.ts";
import { deploymentPart, domainRoute, hostnameOf, mayBeDomain, pathOf, route, takesCanary } from "./routing.ts";
import type { DeploymentConfig, HttpRequest, Outcome, Pin } from "./pool.ts";

const env = (name: string, fallback: string) => Deno.env.get(name) ?? fallback;
const BIND = env("RUNTIME_BIND", "127.0.0.1");
const PORT = Number(env("RUNTIME_PORT", "8787"));
const DOMAIN = env("RUNTIME_DOMAIN", "localhost").toLowerCase();
const CONTROL = env("CONTROL_PLANE_URL", "http://127.0.0.1:8000").replace(/\/$/, "");
const TOKEN = env("RUNTIME_TOKEN", ""); // ours, to call the control plane
// Limits counted across hosts (limits.ts).
connectLimits(env("REDIS_URL", ""), Number(env("RUNTIME_CLOCK_OFFSET_MS", "0")));
// The portal's credential is another secret: the host knows only its digest, so nothing it
// holds lets anyone pass for the portal.
const PORTAL_TOKEN_SHA256 = env("PORTAL_INVOKE_TOKEN_SHA256", "");
// Each host process counts a tenant's invocations on its own: it takes its share.
const PROCESSES = Math.max(1, Number(env("RUNTIME_PROCESSES", "1")));
const FLUSH_MS = 200; // the longest a line waits before it is sent
const COALESCE_MS = 25; // after the first new line, wait this long to batch its neighbours
// Benchmarks only: measure serving without shipping invocations and lines (see docs).
const NO_REPORTS = env("RUNTIME_BENCH_NO_REPORTS", "") === "1";
const auth = { authorization: `Bearer ${TOKEN}` };

// --- answers -----------------------------------------------------------------------------

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** An error answer; its status is the one the contract (contract.json) gives the code. */
function failure(
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  return json(statusOf(code), { error: { code, message }, ...extra }, headers);
}

// --- the control plane (control.ts) --------------------------------------------------------

const control = new ControlPlane({ url: CONTROL, token: TOKEN });

// --- announcements: learning deployments before their first call --------------------------
// The control plane announces hosts whose configuration changed (a new ready deployment, a
// promotion, a visibility change, a deletion). Their cache entries are refreshed at once, so
// a new deployment's first call finds its code here; and when its tenant's sandbox runs here
// already, the sandbox loads it into an isolate, so that call does not wait for a load
// either (a tenant with nothing running here gets no process for it).

async function followAnnouncements() {
  for (;;) {
    try {
      const res = await fetch(`${CONTROL}/internal/runtime/events?preloads=1`, { headers: auth });
      if (res.status !== 200 || !res.body) {
        await res.body?.cancel();
        // 204: the control plane runs without streaming (WSGI); look again later.
        await new Promise((r) => setTimeout(r, res.status === 204 ? 60_000 : 5_000));
        continue;
      }
      let buffer = "";
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of block.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const said = JSON.parse(line.slice(6));
            if (said.preload) preloadBeforeReady(said.preload);
            control.learn(said.hosts ?? [], (known) => {
              if (known.config) cells.preload(known.config);
            });
          }
        }
      }
    } catch {
      // the control plane restarted or is unreachable: reconnect below
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** A deployment about to be marked ready: loaded here if its tenant's sandbox runs here, and
 * the control plane told when that is done (or that there is nothing to do), since it waits
 * for every host before it says the deployment is ready. */
async function preloadBeforeReady(asked: { host: string; tenant: number; answer: string }) {
  try {
    if (!cells.runs(asked.tenant)) return;
    const config = await control.preloading(asked.host);
    if (config) await cells.preload(config);
  } catch {
    // the control plane stops waiting soon; the first call loads it
  } finally {
    reply(asked.answer);
  }
}

// --- API keys (private workers) ------------------------------------------------------------

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** null when the caller may invoke this deployment, else the error answer. */
async function checkAccess(req: Request, config: DeploymentConfig): Promise<Response | null> {
  if (config.public) return null;
  const header = req.headers.get("authorization") ?? "";
  const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
  const match = token.match(/^wk_([0-9a-f]+)_/);
  if (!match) {
    return failure(
      "unauthorized",
      "This worker is private: send `Authorization: Bearer <API key>` with a key that has the invoke scope.",
    );
  }
  let key: KeyInfo;
  try {
    key = await control.key(match[1]);
  } catch (err) {
    return failure("control_plane_unavailable", `Could not check the API key: ${(err as Error).message}`);
  }
  if (!key || key.tenant !== config.tenant || (await sha256Hex(token)) !== key.secretHash) {
    return failure("unauthorized", "The API key is not valid for this worker (unknown, revoked or another tenant's).");
  }
  if (!key.scopes.includes("invoke")) {
    return failure("forbidden", "The API key lacks the invoke scope.");
  }
  return null;
}

// --- reporting to the control plane, never on the invocation's path (reports.ts) --------

const send: Send = (path, body) => control.request(path, { method: "POST", body });
const journal = new Journal(NO_REPORTS ? "" : env("RUNTIME_JOURNAL", ""));
const reports = new Reporter({ journal, send, coalesceMs: COALESCE_MS, enabled: !NO_REPORTS });
const cpu = new CpuCharges(send, !NO_REPORTS);
setInterval(() => reports.flush(), FLUSH_MS);
setInterval(() => cpu.report(), Number(env("RUNTIME_CPU_REPORT_MS", "5000")));

// Each tenant's sandbox process gets the settings that shape its isolates, nothing else of
// this host's environment.
const CELL_ENV = [
  "RUNTIME_DOMAIN",
  "RUNTIME_KV_CACHE_MS",
  "RUNTIME_KV_CACHE_MB",
  "RUNTIME_EGRESS_ALLOW",
  "RUNTIME_EGRESS_DENY",
  "RUNTIME_IDLE_SECONDS",
  "RUNTIME_MAX_ISOLATES",
  "RUNTIME_MEMORY_MB",
  "RUNTIME_SPARES",
  "DENO_DIR",
  "PATH",
  "NO_COLOR",
];
const CELL_MEMORY_MB = Number(env("RUNTIME_CELL_MEMORY_MB", "1024"));
const cells = new Cells({
  command: JSON.parse(env("RUNTIME_CELL_COMMAND", "[]")),
  env: {
    ...Object.fromEntries(
      CELL_ENV.flatMap((name) => Deno.env.get(name) === undefined ? [] : [[name, Deno.env.get(name)!]]),
    ),
    // Idle isolates are stopped once the sandbox nears its memory (or the operator's budget,
    // if lower); the kernel stops it past its memory.
    RUNTIME_MEMORY_BUDGET_MB: String(
      Math.min(Number(env("RUNTIME_MEMORY_BUDGET_MB", "2048")), Math.floor(CELL_MEMORY_MB * 0.75)),
    ),
  },
  maxCells: Number(env("RUNTIME_MAX_CELLS", "64")),
  spares: Number(env("RUNTIME_SPARE_CELLS", "1")),
  memoryBytes: CELL_MEMORY_MB * 1024 * 1024,
  idleMs: Number(env("RUNTIME_IDLE_SECONDS", "300")) * 1000,
  cgroups: env("RUNTIME_CGROUPS", "") === "1",
  loadCode: (artifact) => control.loadCode(artifact),
  lateLog: (deployment, request, fn, line) => reports.line(deployment, request, fn, line),
  internal: (req, pin) => callInternally(req, pin),
  charge: (tenant, ms) => cpu.charge(tenant, ms),
  operations: (tenant, reads, writes) => cpu.operations(tenant, reads, writes),
  bind: async (deployment, path, req) => {
    try {
      const res = await control.request(`/internal/runtime/deployments/${deployment}/${path}`, {
        method: "POST",
        body: JSON.stringify(req),
      });
      return { status: res.status, body: await res.json() };
    } catch (err) {
      const message = `The control plane could not be reached (${(err as Error).message}); retry.`;
      return { status: 503, body: { error: { code: "control_plane_unavailable", message } } };
    }
  },
});
cells.warm();
followAnnouncements(); // (after the sandboxes exist: an announcement may preload into one)

// --- HTTP -------------------------------------------------------------------------------

class TooLarge extends Error {}

async function readBody(req: Request, limit: number): Promise<string> {
  const length = req.headers.get("content-length");
  const declared = Number(length ?? "0");
  if (declared > limit) throw new TooLarge();
  if (!req.body) return "";
  // A declared length within the limit is enforced by the HTTP server itself: read at once.
  if (length !== null) return await req.text();
  const all = await readLimited(req.body, limit); // chunked: counted as it arrives
  if (all === null) throw new TooLarge();
  return new TextDecoder().decode(all);
}

/** A call's answer, with which deployment gave it (the headers made in one go: a header set on
 * a Response afterwards costs more than the rest of them). */
function answer(outcome: Outcome, requestId: string, durationMs: number, config: DeploymentConfig): Response {
  const headers = {
    "content-type": "application/json",
    [HEADERS.requestId]: requestId,
    [HEADERS.deployment]: deploymentPart(config.host),
  };
  const logs = JSON.stringify(outcome.logs);
  const meta = `"durationMs":${durationMs.toFixed(2)},"requestId":"${requestId}"`;
  if (outcome.status === 200) {
    // The isolate already serialised the result; splice it in rather than parse it again.
    return new Response(`{"result":${outcome.json},"logs":${logs},${meta}}`, { status: 200, headers });
  }
  const error = { code: outcome.code, message: outcome.error?.message ?? "", stack: outcome.error?.stack ?? "" };
  // A run's code parked it (ctx.step): when, and on what, it resumes.
  const parked = (outcome.error as { parked?: unknown } | undefined)?.parked;
  if (parked) Object.assign(error, { parked });
  return new Response(`{"error":${JSON.stringify(error)},"logs":${logs},${meta}}`, { status: outcome.status, headers });
}

// Invocations per minute per tenant: counted across all hosts in Redis (limits.ts); while
// Redis cannot say, in this process with its share of the quota (rate.ts).
const windows = new LocalWindows(PROCESSES);

function quotaUsedUp(tenant: number, retryAfter: number): Response {
  cpu.limited(tenant);
  return failure(
    "rate_limited",
    `This tenant's invocation quota is used up for this minute; retry in ${retryAfter} s.`,
    {},
    { "retry-after": String(retryAfter) },
  );
}

function countHere(config: DeploymentConfig): Response | null {
  const wait = windows.take(config.tenant, config.invocationsPerMinute);
  return wait === null ? null : quotaUsedUp(config.tenant, wait);
}

function rateLimit(config: DeploymentConfig): Response | null | Promise<Response | null> {
  const global = takeCall(config.tenant, config.invocationsPerMinute);
  if (global === true) return null;
  if (global === false) return quotaUsedUp(config.tenant, untilNextMinute(minuteClock()));
  if (global instanceof Promise) {
    return global.then((ok) =>
      ok === true ? null : ok === false ? quotaUsedUp(config.tenant, untilNextMinute(minuteClock())) : countHere(config)
    );
  }
  return countHere(config);
}

type Admitted = { config: DeploymentConfig; trusted: boolean; requestId: string; pin: Pin };

// Calls between the platform's workers nest at most this deep: a worker calling itself
// without end is stopped with an answer, not left to fill the host.
const MAX_CALL_DEPTH = 16;

async function lookUp(host: string, pin?: Pin): Promise<Resolved | Response> {
  try {
    const known = control.resolve(host, pin);
    const resolved = known instanceof Promise ? await known : known;
    if (resolved.config) return resolved;
    return failure(
      (resolved.error?.code ?? "deployment_not_found") as ErrorCode,
      resolved.error?.message ?? "No such deployment.",
    );
  } catch (err) {
    return failure("control_plane_unavailable", `Could not look up the deployment: ${(err as Error).message}`);
  }
}

/** Finds the deployment and lets the caller in (its key, the tenant's quota), or answers why
 * not. The same door for exported functions and the fetch handler. `pin` comes with a call
 * one of the platform's workers makes while serving another call. */
async function admit(req: Request, host: string, pin?: Pin): Promise<Admitted | Response> {
  const requestId = newRequestId();
  if (pin && pin.depth >= MAX_CALL_DEPTH) {
    return failure(
      "call_depth_exceeded",
      `Calls between workers nest at most ${MAX_CALL_DEPTH} deep; this chain went deeper (a worker calling itself without end?).`,
    );
  }
  const resolved = await lookUp(host, pin);
  if (resolved instanceof Response) return resolved;
  let config = resolved.config!;
  const generation = config.generation ?? pin?.generation ?? null;
  if (config.canary && takesCanary(req.headers, host, config.canary.percent)) {
    const canary = await lookUp(config.canary.host);
    // A canary that cannot be served right now (deleted, not ready): the stable side serves.
    if (!(canary instanceof Response)) config = canary.config!;
  }
  const portalToken = req.headers.get(HEADERS.portalToken);
  const trusted = portalToken !== null && PORTAL_TOKEN_SHA256 !== "" &&
    (await sha256Hex(portalToken)) === PORTAL_TOKEN_SHA256;
  if (!trusted && !config.public) {
    const denied = await checkAccess(req, config);
    if (denied) return denied;
  }
  const checked = rateLimit(config);
  const limited = checked instanceof Promise ? await checked : checked;
  if (limited) return limited;
  // A durable run's attempt (the platform's own call): its code's steps are that run's.
  const runId = trusted ? req.headers.get(HEADERS.run) ?? undefined : undefined;
  return {
    config,
    trusted,
    requestId,
    pin: { tenant: config.tenant, generation, depth: (pin?.depth ?? 0) + 1, run: runId },
  };
}

/** Runs one call in the deployment's isolate and queues its invocation record. */
async function run(
  admitted: Admitted,
  fn: string,
  trigger: string,
  payload: unknown,
  http?: HttpRequest,
): Promise<{ outcome: Outcome; durationMs: number } | Response> {
  const { config, requestId } = admitted;
  const startedAt = Date.now();
  const t0 = performance.now();
  let outcome: Outcome;
  let cold = true; // an isolate that could not be started counts as a cold start
  // Calls at once: counted across all hosts in Redis; while it cannot say, in this isolate.
  const entered = enterSlot(config.id, config.maxConcurrency);
  const slot = entered instanceof Promise ? await entered : entered;
  if (slot === false) return tooMany(config);
  try {
    let cell;
    try {
      cell = cells.get(config.tenant);
    } catch (err) {
      if (!(err instanceof Cooling)) throw err;
      if (slot) leaveSlot(config.id);
      return failure("sandbox_restarting", err.message, {}, {
        "retry-after": String(Math.ceil(err.retryAfterMs / 1000)),
      });
    }
    if (slot === null && cell.inFlight(config.id) >= config.maxConcurrency) return tooMany(config);
    const answer = await cell.call(config, requestId, fn, payload, http, admitted.pin);
    cold = answer.cold;
    outcome = answer;
  } catch (err) {
    outcome = {
      status: statusOf("isolate_unavailable"),
      code: "isolate_unavailable",
      error: { name: "Error", message: `The deployment could not be started: ${(err as Error).message}`, stack: "" },
      logs: [],
    };
  }
  if (slot) leaveSlot(config.id);
  // For a fetch handler, the time to its response's head (its body may stream on).
  const durationMs = performance.now() - t0;
  reports.invocation({
    requestId,
    deploymentId: config.id,
    function: fn,
    trigger,
    status: outcome.response
      ? "ok"
      : outcome.status === 200
      ? "ok"
      : outcome.status === 504
      ? "timeout"
      : outcome.code === "isolate_crashed"
      ? "crashed"
      : "error",
    statusCode: outcome.status,
    durationMs,
    startedAt,
    errorMessage: outcome.error?.message ?? "",
    cold,
    lines: outcome.logs?.length ?? 0,
  });
  return { outcome, durationMs };
}

function tooMany(config: DeploymentConfig): Response {
  return failure(
    "too_many_concurrent_invocations",
    `This deployment already runs ${config.maxConcurrency} invocations; retry shortly.`,
    {},
    { "retry-after": "1" },
  );
}

function triggerOf(req: Request, admitted: Admitted): string {
  const triggerHeader = req.headers.get(HEADERS.trigger) ?? "";
  return admitted.trusted && TRIGGERS.has(triggerHeader) ? triggerHeader : "http";
}

/** An async call: stored by the control plane as a run before the caller hears 202 (with
 * its status URL in Location); a run that could not be stored is not acknowledged. */
async function handOver(req: Request, config: DeploymentConfig, fn: string, payload: string): Promise<Response> {
  const key = (req.headers.get("authorization") ?? "").match(/^Bearer wk_([0-9a-f]+)_/)?.[1] ?? "";
  const idempotencyKey = req.headers.get(HEADERS.idempotencyKey) ?? "";
  if (idempotencyKey.length > 255) {
    return failure("invalid_json", "The Idempotency-Key header is longer than 255 characters.");
  }
  let res: Response;
  try {
    res = await control.request(`/internal/runtime/deployments/${config.id}/runs`, {
      method: "POST",
      body: JSON.stringify({ function: fn, payload, idempotencyKey, key }),
    });
  } catch (err) {
    return failure(
      "control_plane_unavailable",
      `The run could not be stored, so it was not accepted (${
        (err as Error).message
      }); send it again, with the same Idempotency-Key.`,
    );
  }
  const body = await res.json().catch(() => null);
  if (res.status !== 202 || !body) {
    if (body?.error) return json(res.status, body);
    return failure(
      "control_plane_unavailable",
      `The run could not be stored (the control plane answered ${res.status}); send it again.`,
    );
  }
  const { runId, status, statusUrl } = body;
  return served(
    json(202, { runId, status, statusUrl }, {
      location: statusUrl,
      "preference-applied": "respond-async",
    }),
    config,
  );
}

/** Which deployment answered: a canary's clients can tell the sides apart. */
function served(res: Response, config: DeploymentConfig): Response {
  res.headers.set(HEADERS.deployment, deploymentPart(config.host));
  return res;
}

async function invoke(req: Request, host: string, fn: string, pin?: Pin): Promise<Response> {
  const admitted = await admit(req, host, pin);
  if (admitted instanceof Response) return admitted;
  const { config, requestId } = admitted;
  if (!config.functions.includes(fn)) {
    return failure(
      "function_not_found",
      `This deployment has no exported function named "${fn}". Its functions: ${
        config.functions.join(", ") || "none"
      }.`,
    );
  }
  let payload: unknown = null;
  let text = "";
  try {
    text = await readBody(req, config.maxBodyBytes);
    if (text.trim()) payload = JSON.parse(text);
  } catch (err) {
    if (err instanceof TooLarge) {
      return failure("payload_too_large", `The request body is larger than ${config.maxBodyBytes} bytes.`);
    }
    return failure("invalid_json", `The request body is not valid JSON: ${(err as Error).message}`);
  }
  const prefer = req.headers.get(HEADERS.prefer) ?? "";
  // Most calls have no query: parsing their URL would be most of this check's cost.
  const query = req.url.includes("?") ? new URL(req.url).searchParams : null;
  if (/\brespond-async\b/i.test(prefer) || query?.get("async") === "1") {
    return await handOver(req, config, fn, text.trim() ? text : "null");
  }
  const ran = await run(admitted, fn, triggerOf(req, admitted), payload);
  if (ran instanceof Response) return ran;
  return answer(ran.outcome, requestId, ran.durationMs, config);
}

// Headers the platform reads and the handler never sees: the caller's platform API key and
// the portal's credential are not the tenant code's business.
const PLATFORM_HEADERS = new Set(["authorization", HEADERS.portalToken, HEADERS.trigger, HEADERS.run]);

/** Raw HTTP: any path but /api/invoke/* goes to the default export's fetch handler. */
async function serveHttp(req: Request, host: string, path: string, pin?: Pin): Promise<Response> {
  const admitted = await admit(req, host, pin);
  if (admitted instanceof Response) return admitted;
  const { config, requestId } = admitted;
  if (!config.http) {
    return failure(
      "not_found",
      `This deployment has no fetch handler, so only its functions answer: POST /api/invoke/<function> (${
        config.functions.join(", ")
      }).`,
    );
  }
  let body: ArrayBuffer | null = null;
  if (req.body && req.method !== "GET" && req.method !== "HEAD") {
    const declared = Number(req.headers.get("content-length") ?? "0");
    const bytes = declared > config.maxBodyBytes ? null : await readLimited(req.body, config.maxBodyBytes);
    if (bytes === null) {
      return failure("payload_too_large", `The request body is larger than ${config.maxBodyBytes} bytes.`);
    }
    body = bytes.buffer;
  }
  const key = (req.headers.get("authorization") ?? "").match(/^Bearer wk_/);
  const headers = [...req.headers].filter(([name]) =>
    !(PLATFORM_HEADERS.has(name) && (name !== "authorization" || key || admitted.trusted))
  );
  const query = req.url.indexOf("?");
  const url = `${new URL(req.url).protocol}//${req.headers.get("host") ?? "localhost"}${path}${
    query < 0 ? "" : req.url.slice(query)
  }`;
  const ran = await run(admitted, "fetch", triggerOf(req, admitted), null, { method: req.method, url, headers, body });
  if (ran instanceof Response) return ran;
  const { outcome } = ran;
  if (!outcome.response) return answer(outcome, requestId, ran.durationMs, config);
  const out = new Headers(outcome.response.headers);
  out.set(HEADERS.requestId, requestId);
  out.set(HEADERS.deployment, deploymentPart(config.host));
  return new Response(outcome.response.body, {
    status: outcome.response.status,
    statusText: outcome.response.statusText,
    headers: out,
  });
}

// The edge's question for a tenant's name (Caddy's forward_auth, docs/Caddyfile): which
// tier serves it, answered from this host's cached copy. 200 with x-functions-serve: portal
// (the web processes) or workers (here); 421 for a name nobody verified.
const EDGE_ROUTE_PATH = "/.well-known/functions-edge-route";

async function servedAt(name: string): Promise<DomainRoutes | Response> {
  try {
    const known = control.domain(name);
    return known instanceof Promise ? await known : known;
  } catch (err) {
    return failure("control_plane_unavailable", `Could not look this address up: ${(err as Error).message}`);
  }
}

/** The worker host a tenant's own domain serves at this path, the answer why none, or null
 * when the name is not a tenant's domain (the platform's own names: /d/<host>/ paths). Its
 * answers never name the platform: the caller asked for the tenant's name. */
async function onDomain(req: Request, name: string, path: string): Promise<string | Response | null> {
  const served = await servedAt(name);
  if (served instanceof Response) return served;
  if (path === EDGE_ROUTE_PATH && req.headers.has("x-forwarded-method")) {
    if (!served) return failure("domain_not_served", `${name} is not served here.`);
    return new Response(null, { status: 200, headers: { "x-functions-serve": served.portal ? "portal" : "workers" } });
  }
  if (!served) return path.startsWith("/d/") ? null : failure("domain_not_served", `${name} is not served here.`);
  if (served.portal) return failure("domain_not_served", `${name} serves a portal, not workers.`);
  return domainRoute(served.routes, path) ?? failure("not_found", `Nothing is served at ${path} on ${name}.`);
}

async function handle(req: Request, pin?: Pin, hostname?: string): Promise<Response> {
  const name = hostname ?? hostnameOf(req.headers);
  const pathname = pathOf(req.url);
  let host: string | null = null;
  let path = pathname;
  // A tenant's own domain serves only its routes: never /d/<any host>/ under its name.
  if (name !== DOMAIN && !name.endsWith(`.${DOMAIN}`) && mayBeDomain(name)) {
    const served = await onDomain(req, name, pathname);
    if (served instanceof Response) return served;
    host = served;
  }
  if (!host) ({ host, path } = route(pathname, name, DOMAIN));
  if (!host) {
    if (path === "/healthz") {
      const pending = reports.queued.length;
      const { cells: sandboxes, isolates, spares } = await cells.counts();
      return json(200, {
        ok: true,
        pid: Deno.pid,
        sandboxes,
        isolates,
        spares,
        knownHosts: control.hosts.size,
        cachedCode: control.code.size,
        pendingReports: pending,
        flushing: reports.flushing,
      });
    }
    return failure(
      "not_found",
      `No deployment at this address. Use http://<deployment-host>.${DOMAIN}:${PORT}/api/invoke/<function> or /d/<deployment-host>/api/invoke/<function>.`,
    );
  }
  if (!path.startsWith("/api/invoke/")) return await serveHttp(req, host, path, pin);
  const match = path.match(/^\/api\/invoke\/([^/]+)\/?$/);
  if (!match) {
    return failure("not_found", "Invoke a function with POST /api/invoke/<function>.");
  }
  if (req.method !== "POST") {
    return failure("method_not_allowed", "Invoke a function with POST and a JSON body.", {}, { allow: "POST" });
  }
  return await invoke(req, host, decodeURIComponent(match[1]), pin);
}

// --- calls between the platform's workers ------------------------------------------------
// A worker's fetch of another worker's URL (<host>.DOMAIN) is served here, in this host,
// through the same door as any caller (its key, the tenant's quota, the callee's limits),
// and with the caller's pin: a call that came through a production URL makes its calls as of
// the same release generation, so one chain never sees half of a release.
const MAX_INTERNAL_RESPONSE_BYTES = 10 * 1024 * 1024;

function callInternally(msg: FetchRequest, pin?: Pin): Promise<FetchAnswer> | null {
  let url: URL;
  try {
    url = new URL(msg.url);
  } catch {
    return null;
  }
  const hostname = url.hostname.toLowerCase();
  if (!hostname.endsWith(`.${DOMAIN}`) || (url.protocol !== "http:" && url.protocol !== "https:")) return null;
  return (async (): Promise<FetchAnswer> => {
    const req = new Request(url, { method: msg.method, headers: msg.headers, body: msg.body });
    const res = await handle(req, pin ?? { tenant: 0, generation: null, depth: 1 }, hostname);
    const all = await readLimited(res.body, MAX_INTERNAL_RESPONSE_BYTES);
    if (all === null) {
      return { ok: false, error: `The response of ${url.host} is larger than ${MAX_INTERNAL_RESPONSE_BYTES} bytes.` };
    }
    return {
      ok: true,
      status: res.status,
      statusText: res.statusText,
      headers: [...res.headers],
      body: all.buffer as ArrayBuffer,
      url: url.href,
    };
  })();
}

const STARTED = Date.now();
let sandboxCounts = { cells: 0, isolates: 0, spares: 0 };
setInterval(() => cells.counts().then((c) => (sandboxCounts = c)), HEARTBEAT_MS);
heartbeat(() => ({
  pid: Deno.pid,
  address: `${BIND}:${PORT}`,
  startedAt: STARTED,
  sandboxes: sandboxCounts.cells,
  isolates: sandboxCounts.isolates,
  spares: sandboxCounts.spares,
  rssBytes: Deno.memoryUsage().rss,
  knownHosts: control.hosts.size,
  pendingReports: reports.queued.length,
  droppedInvocations: reports.droppedInvocations,
}));

const server = Deno.serve({
  hostname: BIND,
  port: PORT,
  reusePort: true, // several host processes share the port (one per core); the kernel spreads connections
  onListen: ({ hostname, port }) => console.log(`runtime: listening on http://${hostname}:${port} (*.${DOMAIN})`),
}, async (req) => {
  try {
    return await handle(req);
  } catch (err) {
    console.error("runtime: unexpected error", err);
    return failure("runtime_error", "The runtime failed to handle this request.");
  }
});

// A graceful stop: no new connections, the tenants' sandboxes stopped, what is queued sent.
let stopping = false;
async function stop(why: string) {
  if (stopping) return;
  stopping = true;
  console.error(`runtime: host stopping (${why})`);
  // Calls in flight finish (their records are journaled before their answers leave), for a
  // few seconds at most; then every queued report goes out, not just the next batch.
  const drained = server.shutdown().catch(() => {});
  await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 3_000))]);
  cells.stopAll();
  await Promise.all([reports.drain(), cpu.report()]);
  Deno.exit(0);
}
for (const signal of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(signal, () => stop(signal));

// A host lives as long as the supervisor that started it (manage.py runtime): one killed with
// kill -9 cannot stop its hosts, and the supervisor started in its place starts new ones.
const SUPERVISOR = Deno.ppid;
setInterval(() => {
  if (Deno.ppid !== SUPERVISOR) stop("its supervisor is gone");
}, 500);
