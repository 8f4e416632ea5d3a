// Runs inside one deployment's Web Worker (no file, env, net, run or FFI permission).
// Loads the deployment's bundle, runs calls, and attributes console lines to the call
// that printed them, also after an await (AsyncLocalStorage), so concurrent calls in one
// isolate never mix their lines.
import { AsyncLocalStorage } from "node:async_hooks";

const calls = new AsyncLocalStorage();
const post = (message) => self.postMessage(message);
let isolateSeq = 0;

function format(args) {
  return args
    .map((a) => (typeof a === "string" ? a : Deno.inspect(a, { depth: 6, colors: false })))
    .join(" ");
}

const LEVELS = { log: "log", info: "info", debug: "debug", trace: "debug", warn: "warn", error: "error" };
for (const [method, level] of Object.entries(LEVELS)) {
  console[method] = (...args) => {
    const call = calls.getStore();
    const seq = call ? call.seq++ : isolateSeq++;
    post({ t: "log", id: call ? call.id : null, seq, level, message: format(args), ts: Date.now() });
  };
}

// Errors that escape a call (a timer that throws after returning, a rejected promise no
// one awaited) are logged, never allowed to kill the isolate and its other calls.
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  console.error("Unhandled promise rejection:", event.reason);
});
self.addEventListener("error", (event) => {
  event.preventDefault();
  console.error("Uncaught error:", event.error ?? event.message);
});

let loaded;

function describe(err) {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, stack: err.stack ?? "" };
  }
  return { name: "Error", message: typeof err === "string" ? err : format([err]), stack: "" };
}

async function run(msg) {
  let mod;
  try {
    mod = await loaded;
  } catch (err) {
    const error = describe(err);
    error.message = `The module failed to load: ${error.message}`;
    post({ t: "done", id: msg.id, ok: false, code: "module_load_failed", error });
    return;
  }
  const fn = mod[msg.fn];
  if (typeof fn !== "function") {
    post({ t: "done", id: msg.id, ok: false, code: "function_not_found",
           error: { name: "Error", message: `No exported function named ${msg.fn}`, stack: "" } });
    return;
  }
  let value;
  try {
    value = await fn(msg.payload);
  } catch (err) {
    post({ t: "done", id: msg.id, ok: false, code: "function_error", error: describe(err) });
    return;
  }
  let json;
  try {
    json = JSON.stringify(value === undefined ? null : value);
    if (json === undefined) json = "null"; // functions and symbols stringify to undefined
  } catch (err) {
    post({ t: "done", id: msg.id, ok: false, code: "result_not_serializable",
           error: { name: "TypeError", message: `The function's result is not JSON: ${err.message}`, stack: "" } });
    return;
  }
  post({ t: "done", id: msg.id, ok: true, json });
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.t === "init") {
    const url = URL.createObjectURL(new Blob([msg.code], { type: "text/javascript" }));
    loaded = import(url);
    loaded.then(
      () => post({ t: "loaded" }),
      (err) => post({ t: "load_error", error: describe(err) }),
    );
  } else if (msg.t === "call") {
    calls.run({ id: msg.id, seq: 0 }, () => run(msg));
  }
};
