// Runs inside one deployment's isolate: a worker thread started by the sandbox root (no
// file, env, net, run or FFI permission), talking to the host over its own MessagePort.
// Loads the deployment's bundle, runs calls, and attributes console lines to the call
// that printed them, also after an await (AsyncLocalStorage), so concurrent calls in one
// isolate never mix their lines.
import { AsyncLocalStorage } from "node:async_hooks";
import { workerData } from "node:worker_threads";

// What the isolate's own plumbing uses is taken before tenant code runs, so code that
// overwrites JSON.stringify, postMessage or Date.now breaks only itself, never the answer's
// JSON or the log lines' shape.
const stringify = JSON.stringify;
const inspect = Deno.inspect;
const now = Date.now;
const port = workerData.port;
delete workerData.port; // tenant code reaches the host only through console and fetch

// Where the runtime is installed is not the tenant's business (these need no permission).
for (const [owner, key, value] of [
  [globalThis.process, "cwd", () => "/"],
  [globalThis.process, "argv", ["/deno", "worker.js"]],
  [globalThis.process, "argv0", "deno"],
  [Deno, "cwd", () => "/"],
]) {
  try {
    Object.defineProperty(owner, key, { get: () => value, configurable: true });
  } catch {
    // not redefinable in this Deno: left as is
  }
}
const postMessage = port.postMessage.bind(port);
const calls = new AsyncLocalStorage();
const post = (message) => postMessage(message);
let isolateSeq = 0;

// This file is loaded from a data: URL; in stack traces it is shown by name instead.
const SELF = /data:text\/javascript;base64,[A-Za-z0-9+/=]+/g;
const clean = (text) => (typeof text === "string" ? text.replace(SELF, "runtime:isolate.js") : text);

function format(args) {
  return clean(args
    .map((a) => (typeof a === "string" ? a : inspect(a, { depth: 6, colors: false })))
    .join(" "));
}

// Limits set by the host at init; lines over them are dropped or cut, never silently.
const limits = { maxLines: 1000, maxLineBytes: 8192 };
const encoder = new TextEncoder();

function capped(message) {
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit: measure only when it may matter.
  if (message.length * 3 <= limits.maxLineBytes) return message;
  const bytes = encoder.encode(message);
  if (bytes.length <= limits.maxLineBytes) return message;
  const kept = new TextDecoder().decode(bytes.subarray(0, limits.maxLineBytes)).replace(/\uFFFD$/, "");
  return `${kept} … [truncated: the line was ${bytes.length} bytes, the limit is ${limits.maxLineBytes}]`;
}

function emit(call, level, message) {
  const seq = call ? call.seq++ : isolateSeq++;
  post({ t: "log", id: call ? call.id : null, fn: call ? call.fn : "", seq, level, message, ts: now() });
}

const LEVELS = { log: "log", info: "info", debug: "debug", trace: "debug", warn: "warn", error: "error" };
for (const [method, level] of Object.entries(LEVELS)) {
  console[method] = (...args) => {
    const call = calls.getStore();
    if (call) {
      if (call.lines >= limits.maxLines) {
        call.dropped++;
        return;
      }
      call.lines++;
    }
    emit(call, level, capped(format(args)));
  };
}

function reportDropped(call) {
  if (call.dropped > 0) {
    emit(call, "warn", `truncated: ${call.dropped} lines dropped (the limit is ${limits.maxLines} lines per invocation)`);
    call.dropped = 0;
  }
}

// Errors that escape a call (a timer that throws after returning, a rejected promise no
// one awaited) are logged, never allowed to kill the isolate and its other calls.
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  console.error("Unhandled promise rejection:", event.reason);
});
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  console.error("Uncaught error:", event.error ?? event.message);
});

let loaded;

function describe(err) {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, stack: clean(err.stack ?? "") };
  }
  return { name: "Error", message: typeof err === "string" ? err : format([err]), stack: "" };
}

async function run(msg) {
  const done = await invoke(msg);
  reportDropped(calls.getStore()); // before "done", so the marker is in the answer too
  post(done);
}

async function invoke(msg) {
  let mod;
  try {
    mod = await loaded;
  } catch (err) {
    const error = describe(err);
    error.message = `The module failed to load: ${error.message}`;
    return { t: "done", id: msg.id, ok: false, code: "module_load_failed", error };
  }
  const fn = mod[msg.fn];
  if (typeof fn !== "function") {
    return { t: "done", id: msg.id, ok: false, code: "function_not_found",
           error: { name: "Error", message: `No exported function named ${msg.fn}`, stack: "" } };
  }
  let value;
  try {
    value = await fn(msg.payload);
  } catch (err) {
    return { t: "done", id: msg.id, ok: false, code: "function_error", error: describe(err) };
  }
  let json;
  try {
    json = stringify(value === undefined ? null : value);
    if (json === undefined) json = "null"; // functions and symbols stringify to undefined
  } catch (err) {
    return { t: "done", id: msg.id, ok: false, code: "result_not_serializable",
           error: { name: "TypeError", message: `The function's result is not JSON: ${err.message}`, stack: "" } };
  }
  return { t: "done", id: msg.id, ok: true, json };
}

// Isolates have no network permission: `fetch` asks the host, which applies the operator's
// egress policy (public addresses only, allow and deny lists) and answers with the response.
const NativeRequest = Request;
const NativeResponse = Response;
const outbound = new Map();
let outboundSeq = 0;

async function fetchThroughHost(input, init) {
  const request = new NativeRequest(input, init);
  const body = request.body ? await request.arrayBuffer() : null;
  const id = ++outboundSeq;
  const answer = await new Promise((resolve) => {
    outbound.set(id, resolve);
    const message = { t: "fetch", id, url: request.url, method: request.method, headers: [...request.headers], body };
    port.postMessage(message, body ? [body] : []);
  });
  if (!answer.ok) throw new TypeError(answer.error);
  const empty = answer.status === 204 || answer.status === 205 || answer.status === 304;
  const response = new NativeResponse(empty ? null : answer.body, {
    status: answer.status, statusText: answer.statusText, headers: answer.headers,
  });
  Object.defineProperty(response, "url", { value: answer.url });
  return response;
}
globalThis.fetch = fetchThroughHost;

port.onmessage = (event) => {
  const msg = event.data;
  if (msg.t === "init") {
    Object.assign(limits, msg.limits ?? {});
    // The deployment's secrets, as process.env (also what node:process exports); the
    // isolate has no access to the host's real environment.
    Object.defineProperty(globalThis.process, "env", {
      value: Object.freeze({ ...(msg.env ?? {}) }),
      configurable: true,
    });
    const url = URL.createObjectURL(new Blob([msg.code], { type: "text/javascript" }));
    loaded = import(url);
    loaded.then(
      () => post({ t: "loaded" }),
      (err) => post({ t: "load_error", error: describe(err) }),
    );
  } else if (msg.t === "fetched") {
    outbound.get(msg.id)?.(msg.answer);
    outbound.delete(msg.id);
  } else if (msg.t === "call") {
    calls.run({ id: msg.id, fn: msg.fn, seq: 0, lines: 0, dropped: 0 }, () => run(msg));
  }
};
