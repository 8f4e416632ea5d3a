// Runs inside one deployment's isolate: a worker thread started by its sandbox process after
// that process gave up every permission (no file, env, net, run or FFI; pool.ts, Sandbox),
// talking to the host over its own MessagePort.
// Loads the deployment's bundle, runs calls, and attributes console lines to the call
// that printed them, also after an await (AsyncLocalStorage), so concurrent calls in one
// isolate never mix their lines.
import { AsyncLocalStorage } from "node:async_hooks";
import { Buffer as NodeBuffer } from "node:buffer";
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
for (
  const [owner, key, value] of /** @type {[object, string, unknown][]} */ ([
    [globalThis.process, "cwd", () => "/"],
    [globalThis.process, "argv", ["/deno", "worker.js"]],
    [globalThis.process, "argv0", "deno"],
    [Deno, "cwd", () => "/"],
  ])
) {
  try {
    Object.defineProperty(owner, key, { get: () => value, configurable: true });
  } catch {
    // not redefinable in this Deno: left as is
  }
}
const postMessage = port.postMessage.bind(port);
// Threads of its own would run outside this isolate's accounting: tenant code gets no Web
// Workers (node:worker_threads still exists; what it starts runs in the tenant's sandbox
// process, inside that process's limits, and is stopped with it).
delete globalThis.Worker;
const calls = new AsyncLocalStorage();
// The durable step (ctx.step.run) whose code is running, if any: its lines are noted as its.
const inStep = new AsyncLocalStorage();
// Answers leave in batches: all that are ready by the end of this turn go in one message
// (a cross-thread message is the dearest part of a call). The one call in flight is answered
// at once. (A finished answer waiting in the batch dies with the isolate if another call
// never returns; that caller is told the isolate was restarted.)
let outbox = [];
let inFlight = 0;
const flush = () => {
  const list = outbox;
  outbox = [];
  postMessage({ t: "batch", list });
};
const post = (message) => {
  if (outbox.push(message) === 1) {
    if (inFlight <= 1) flush();
    else queueMicrotask(flush);
  }
};
let isolateSeq = 0;

// This file is loaded from a data: URL; in stack traces it is shown by name instead.
const SELF = /data:text\/javascript;base64,[A-Za-z0-9+/=.]+/g; // V8 may elide its middle (...)
const clean = (text) => typeof text === "string" ? inTenantFiles(text.replace(SELF, "runtime:isolate.js")) : text;

// --- stack traces in the tenant's own files ---------------------------------------------
// The bundle is loaded from a blob: URL, so V8 names positions `blob:null/<uuid>:line:col`.
// The build appends the bundle's source map (sources and mappings only) on its last line;
// the first trace that needs it decodes it, and every position becomes `file:line:col` of
// the upload (or `npm/...` inside a package); without a map, `bundle.js:line:col`.
const MAP_PREFIX = "\n//# functions-source-map="; // build.py writes it
const IN_BUNDLE = /blob:null\/[0-9a-f-]+:(\d+):(\d+)/g;
let mapText = "";
let sourceMap = null; // { sources, lines: [[generatedColumn, source, line, column], ...][] }

function keepMap(code) {
  const at = code.lastIndexOf(MAP_PREFIX);
  if (at >= 0) mapText = code.slice(at + MAP_PREFIX.length).trim();
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Source map v3 mappings: per generated line, its segments (fields made absolute). */
function decodeMappings(mappings) {
  const lines = [];
  let source = 0, line = 0, column = 0;
  for (const text of mappings.split(";")) {
    const segments = [];
    let generated = 0;
    for (const segment of text ? text.split(",") : []) {
      const fields = [];
      let value = 0, shift = 0;
      for (const char of segment) {
        const digit = BASE64.indexOf(char);
        value += (digit & 31) * 2 ** shift;
        if (digit & 32) {
          shift += 5;
        } else {
          fields.push(value % 2 ? -Math.floor(value / 2) : value / 2);
          value = 0;
          shift = 0;
        }
      }
      generated += fields[0];
      if (fields.length >= 4) {
        source += fields[1];
        line += fields[2];
        column += fields[3];
        segments.push([generated, source, line, column]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

function loadMap() {
  if (sourceMap === null) {
    try {
      const raw = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(mapText), (c) => c.charCodeAt(0))));
      sourceMap = { sources: raw.sources, lines: decodeMappings(raw.mappings) };
    } catch {
      sourceMap = { sources: [], lines: [] };
    }
  }
  return sourceMap;
}

/** The original position of (1-based) `line`:`column` of the bundle, or null. */
function originalOf(line, column) {
  const segments = loadMap().lines[line - 1];
  if (!segments || segments.length === 0) return null;
  let low = 0, high = segments.length - 1, found = -1;
  while (low <= high) { // the last segment that starts at or before the column
    const mid = (low + high) >> 1;
    if (segments[mid][0] <= column - 1) {
      found = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  const [, source, original, originalColumn] = segments[Math.max(found, 0)];
  const name = sourceMap.sources[source];
  return name === undefined ? null : `${name}:${original + 1}:${originalColumn + 1}`;
}

function inTenantFiles(text) {
  if (!text.includes("blob:null/")) return text;
  return text.replace(
    IN_BUNDLE,
    (_whole, line, column) => (mapText && originalOf(Number(line), Number(column))) || `bundle.js:${line}:${column}`,
  );
}

function format(args) {
  return clean(
    args
      .map((a) => (typeof a === "string" ? a : inspect(a, { depth: 6, colors: false })))
      .join(" "),
  );
}

// Limits set by the host at init; lines over them are dropped or cut, never silently.
const limits = { maxLines: 1000, maxLineBytes: 8192, memoryMb: 128 };
const encoder = new TextEncoder();

function capped(message) {
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit: measure only when it may matter.
  if (message.length * 3 <= limits.maxLineBytes) return message;
  const bytes = encoder.encode(message);
  if (bytes.length <= limits.maxLineBytes) return message;
  const kept = new TextDecoder().decode(bytes.subarray(0, limits.maxLineBytes)).replace(/\uFFFD$/, "");
  return `${kept} … [truncated: the line was ${bytes.length} bytes, the limit is ${limits.maxLineBytes}]`;
}

// Lines go to the host through a shared ring (layout in ring.ts), never as messages. The
// writer uses only what it took before tenant code ran and plain indexed stores (which no
// script can intercept), so tenant code that replaces Atomics, DataView or TextEncoder
// methods can neither reach the ring nor garble its own lines.
const LEVEL_CODES = { log: 0, info: 1, debug: 2, warn: 3, error: 4 };
const atomicLoad = /** @type {(array: Int32Array, at: number) => number} */ (Atomics.load);
const atomicStore = Atomics.store;
const atomicAdd = Atomics.add;
const atomicWait = Atomics.wait;
const apply = Reflect.apply;
const encode = TextEncoder.prototype.encode;
const utf8 = (text) => apply(encode, encoder, [text]);
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const ring = { counters: null, bytes: null, size: 0 };

function attach(buffer) {
  ring.counters = new Int32Array(buffer, 0, 2);
  ring.bytes = new Uint8Array(buffer, 8);
  ring.size = buffer.byteLength - 8;
}

function putU32(at, value) {
  const b = ring.bytes;
  b[at] = value & 0xff;
  b[at + 1] = (value >>> 8) & 0xff;
  b[at + 2] = (value >>> 16) & 0xff;
  b[at + 3] = (value >>> 24) & 0xff;
}

function putBytes(at, bytes) {
  const b = ring.bytes;
  for (let i = 0; i < bytes.length; i++) b[at + i] = bytes[i];
}

/** Waits until the host has read enough for `needed` more bytes; false if it never does. */
function room(needed) {
  for (let waited = 0; waited < 600; waited++) {
    const read = atomicLoad(ring.counters, 1);
    if (ring.size - ((atomicLoad(ring.counters, 0) - read) >>> 0) >= needed) return true;
    atomicWait(ring.counters, 1, read, 50); // the host reads every few milliseconds
  }
  return false;
}

function emit(call, level, message) {
  const seq = call ? call.seq++ : isolateSeq++;
  const id = utf8(call ? call.id : "");
  const fn = utf8(call ? call.fn : "");
  const text = utf8(message);
  const length = 24 + id.length + fn.length + text.length;
  const padded = (length + 3) & ~3;
  const written = atomicLoad(ring.counters, 0) >>> 0;
  const at = written % ring.size;
  const wrap = ring.size - at < padded ? ring.size - at : 0;
  if (!room(wrap + padded)) return; // the host stopped reading: it is stopping this isolate
  let start = written;
  if (wrap) {
    putU32(at, 0xffffffff);
    start = (written + wrap) >>> 0;
  }
  const p = start % ring.size;
  putU32(p, length);
  ring.bytes[p + 4] = LEVEL_CODES[level] ?? 0;
  ring.bytes[p + 5] = 0;
  ring.bytes[p + 6] = id.length & 0xff;
  ring.bytes[p + 7] = id.length >>> 8;
  putU32(p + 8, seq);
  putU32(p + 12, fn.length);
  f64[0] = now();
  putBytes(p + 16, f64Bytes);
  putBytes(p + 24, id);
  putBytes(p + 24 + id.length, fn);
  putBytes(p + 24 + id.length + fn.length, text);
  atomicStore(ring.counters, 0, (start + padded) | 0); // publishes the line
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
      const step = inStep.getStore();
      if (step && step.lines.length < 1000) step.lines.push(call.seq); // the seq emit gives it
    }
    emit(call, level, capped(format(args)));
  };
}

function reportDropped(call) {
  if (call.dropped > 0) {
    emit(
      call,
      "warn",
      `truncated: ${call.dropped} lines dropped (the limit is ${limits.maxLines} lines per invocation)`,
    );
    call.dropped = 0;
  }
}

// --- memory ------------------------------------------------------------------------------
// The isolate's heap limit (resourceLimits) counts only the JS heap: ArrayBuffers, typed
// arrays and WebAssembly memory live outside it. Their bytes are V8's "external" memory of
// this isolate, which Deno.memoryUsage() reports (about 11 µs a look). The isolate looks at
// heap + external after every MB made through the ways code makes buffers (constructors,
// slice and friends, TextEncoder, WebAssembly.Memory) and at the end of a call, at most
// every 100 ms; over the deployment's limit it tells the host, which stops it, and waits.
const memoryUsage = Deno.memoryUsage;
const LOOK_EVERY_BYTES = 1 << 20;
const halt = new Int32Array(new SharedArrayBuffer(4));
const memory = { unlooked: 0, lastLook: 0 };
const wasm = { bytes: 0 };

function lookAtMemory() {
  memory.unlooked = 0;
  memory.lastLook = now();
  const used = memoryUsage();
  const total = used.heapUsed + used.external + wasm.bytes;
  if (total > limits.memoryMb * 1048576) {
    postMessage({ t: "memory", used: total }); // at once, not in a batch: nothing runs after
    for (;;) atomicWait(halt, 0, 0); // until the host stops this isolate
  }
}

function made(bytes) {
  memory.unlooked += bytes;
  if (memory.unlooked >= LOOK_EVERY_BYTES) lookAtMemory();
}

const byteLengthOf = (proto) => Object.getOwnPropertyDescriptor(proto, "byteLength").get;
const TypedArray = Object.getPrototypeOf(Uint8Array);
const typedLength = byteLengthOf(TypedArray.prototype);
const bufferLength = byteLengthOf(ArrayBuffer.prototype);
const sharedLength = byteLengthOf(SharedArrayBuffer.prototype);

function counting(Native, lengthOf) {
  const proxy = new Proxy(Native, {
    construct(target, args, newTarget) {
      const value = Reflect.construct(target, args, newTarget);
      made(apply(lengthOf, value, []));
      return value;
    },
  });
  // `x.constructor === Uint8Array` stays true, and what slice() and map() make through
  // their species goes through the count too.
  Object.defineProperty(Native.prototype, "constructor", {
    value: proxy,
    writable: true,
    configurable: true,
  });
  return proxy;
}
for (
  const name of [
    "Int8Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int16Array",
    "Uint16Array",
    "Int32Array",
    "Uint32Array",
    "Float16Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
  ]
) {
  if (typeof globalThis[name] === "function") globalThis[name] = counting(globalThis[name], typedLength);
}
globalThis.ArrayBuffer = counting(ArrayBuffer, bufferLength);
globalThis.SharedArrayBuffer = counting(SharedArrayBuffer, sharedLength);

/** Methods that return new memory, made to count it (sizes read the way they were made). */
function countResult(owner, names, lengthOf) {
  for (const name of names) {
    const native = owner[name];
    if (typeof native !== "function") continue;
    Object.defineProperty(owner, name, {
      value: function (...args) {
        const value = apply(native, this, args);
        made(lengthOf ? apply(lengthOf, value, []) : 0);
        return value;
      },
      writable: true,
      configurable: true,
    });
  }
}
countResult(TypedArray.prototype, ["slice", "map", "filter", "toReversed", "toSorted", "with"], typedLength);
countResult(TypedArray, ["from", "of"], typedLength);
countResult(ArrayBuffer.prototype, ["slice", "transfer", "transferToFixedLength"], bufferLength);
countResult(SharedArrayBuffer.prototype, ["slice"], sharedLength);
countResult(TextEncoder.prototype, ["encode"], typedLength);
// node:buffer is one module for the whole isolate: tenant code that imports it gets these.
countResult(NodeBuffer, ["alloc", "allocUnsafe", "allocUnsafeSlow", "from", "concat"], typedLength);
// Growing a buffer in place makes memory too: look after it.
for (
  const [owner, name] of /** @type {[any, string][]} */ ([
    [ArrayBuffer.prototype, "resize"],
    [SharedArrayBuffer.prototype, "grow"],
  ])
) {
  const native = owner[name];
  if (typeof native !== "function") continue;
  Object.defineProperty(owner, name, {
    value: function (...args) {
      const value = apply(native, this, args);
      lookAtMemory();
      return value;
    },
    writable: true,
    configurable: true,
  });
}
// WebAssembly memory is reserved apart from the external count: its pages are counted here
// (wasm.bytes), and forgotten when the memory is collected.
if (typeof WebAssembly === "object") {
  const NativeMemory = WebAssembly.Memory;
  const wasmBuffer = Object.getOwnPropertyDescriptor(NativeMemory.prototype, "buffer").get;
  const sizes = new WeakMap();
  const collected = new FinalizationRegistry((size) => (wasm.bytes -= size.bytes));
  const measure = (memory) => apply(bufferLength, apply(wasmBuffer, memory, []), []);
  WebAssembly.Memory = new Proxy(NativeMemory, {
    construct(target, args, newTarget) {
      const value = Reflect.construct(target, args, newTarget);
      const size = { bytes: measure(value) };
      sizes.set(value, size);
      collected.register(value, size);
      wasm.bytes += size.bytes;
      made(size.bytes);
      return value;
    },
  });
  Object.defineProperty(NativeMemory.prototype, "constructor", {
    value: WebAssembly.Memory,
    writable: true,
    configurable: true,
  });
  const grow = NativeMemory.prototype.grow;
  NativeMemory.prototype.grow = function (...args) {
    const value = apply(grow, this, args);
    const size = sizes.get(this);
    if (size) {
      const current = measure(this);
      wasm.bytes += current - size.bytes;
      size.bytes = current;
    }
    lookAtMemory();
    return value;
  };
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

// Which call's code runs now, for the host's CPU-time limit: written when a call starts and
// whenever its code resumes after a pause this file sees (a fetch answered, a timer fired);
// the second number counts the host's pings answered.
let running = null;
const mark = (call) => {
  if (running) atomicStore(running, 0, call ? call.n : 0);
};
for (const name of ["setTimeout", "setInterval"]) {
  const native = globalThis[name];
  globalThis[name] = function (callback, ...rest) {
    const call = calls.getStore();
    if (typeof callback !== "function" || !call) return apply(native, this, [callback, ...rest]);
    return apply(native, this, [/** @this {unknown} */ function (...args) {
      mark(call);
      return apply(callback, this, args);
    }, ...rest]);
  };
}

function describe(err) {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, stack: clean(err.stack ?? "") };
  }
  return { name: "Error", message: typeof err === "string" ? err : format([err]), stack: "" };
}

/** What a call's code gets beside its payload or request (types: runtime/context.d.ts): the
 * deployment's plain settings and secrets, the call's request id, and waitUntil: work that
 * goes on after the answer has left, within the call's time and CPU limits, its lines and
 * errors recorded with the call. */
// --- bindings: ctx.kv.<NAME> and ctx.enqueue ------------------------------------------------
// Asked of the sandbox process (pool.ts, cell.ts), which answers a read from its cache or asks
// the control plane through the host. Keys and values are checked here first, so a bad one
// fails at once with a clear error; the control plane checks them again.
const MAX_KEY_CHARS = 512;
const MAX_VALUE_BYTES = 1024 * 1024;
const decoder = new TextDecoder();
const parseJson = JSON.parse;
const asked = new Map();
let askedSeq = 0;

class BindingError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "BindingError";
    this.code = code;
  }
}

function ask(message, transfer) {
  const call = calls.getStore();
  const id = ++askedSeq;
  return new Promise((resolve, reject) => {
    asked.set(id, (answer) => {
      mark(call);
      if (answer.ok) resolve(answer.value);
      else reject(new BindingError(answer.code, answer.message));
    });
    port.postMessage({ ...message, id, call: call?.id }, transfer ?? []); // at once: the call waits
  });
}

function checkedKey(key) {
  if (typeof key !== "string" || key === "") throw new TypeError("A key is a non-empty string.");
  if (key.length > MAX_KEY_CHARS) throw new RangeError(`A key holds at most ${MAX_KEY_CHARS} characters.`);
  return key;
}

/** A value as bytes: text as UTF-8, bytes as they are, anything else as its JSON. */
function valueBytes(value) {
  let bytes;
  if (typeof value === "string") bytes = utf8(value);
  else if (value instanceof ArrayBuffer) bytes = new NativeUint8Array(value.slice(0));
  else if (ArrayBuffer.isView(value)) {
    bytes = new NativeUint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  } else {
    const text = stringify(value);
    if (text === undefined) throw new TypeError("This value cannot be stored: give text, bytes or JSON.");
    bytes = utf8(text);
  }
  if (bytes.byteLength > MAX_VALUE_BYTES) {
    throw new RangeError(`A value holds at most ${MAX_VALUE_BYTES} bytes; this one has ${bytes.byteLength}.`);
  }
  return bytes;
}

function read(bytes, type) {
  if (type === "bytes") return bytes;
  if (type === "json") return parseJson(decoder.decode(bytes));
  if (type === "text" || type === undefined) return decoder.decode(bytes);
  throw new TypeError('A value is read as "text", "json" or "bytes".');
}

const when = (ms) => (ms === null || ms === undefined ? null : new Date(ms));

function namespace(binding) {
  const kv = (op, fields, transfer) => ask({ t: "kv", b: binding, op, ...fields }, transfer);
  return Object.freeze({
    async get(key, type) {
      const entry = await kv("get", { key: checkedKey(key) });
      return entry.found ? read(new NativeUint8Array(entry.value), type) : null;
    },
    async getWithMetadata(key, type) {
      const entry = await kv("get", { key: checkedKey(key) });
      if (!entry.found) return null;
      return {
        value: read(new NativeUint8Array(entry.value), type),
        metadata: entry.metadata ?? null,
        version: entry.version,
        expiresAt: when(entry.expiresAt),
      };
    },
    async put(key, value, options) {
      const { ttl, metadata, ifVersion } = options ?? {};
      const bytes = valueBytes(value);
      const written = await kv("put", { key: checkedKey(key), value: bytes.buffer, ttl, metadata, ifVersion }, [
        bytes.buffer,
      ]);
      return { ok: written.ok, version: written.version };
    },
    async delete(key) {
      return (await kv("delete", { key: checkedKey(key) })).deleted;
    },
    async list(options) {
      const { prefix, cursor, limit } = options ?? {};
      const page = await kv("list", { prefix: prefix ?? "", cursor: cursor ?? "", limit: limit ?? 100 });
      return {
        keys: page.keys.map((k) => ({
          name: k.key,
          metadata: k.metadata ?? null,
          version: k.version,
          expiresAt: when(k.expiresAt),
        })),
        cursor: page.cursor ?? null,
      };
    },
  });
}

let kvBindings = Object.freeze({});

// --- durable steps: ctx.step, in a run's calls ------------------------------------------------
// A step that the run's journal (kept by the control plane) holds as done is not run again:
// its result is given back. A sleep or a wait that is not over parks the run: the call ends
// ("run_parked", with when to resume) and the run is attempted again then, from the top.
const DURATION =
  /^(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$/i;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

function durationMs(value) {
  if (typeof value === "number" && value >= 0) return value;
  const found = typeof value === "string" ? DURATION.exec(value.trim()) : null;
  if (!found) {
    throw new TypeError(
      `Not a duration: ${format([value]).slice(0, 40)} (a number of ms, or "10s", "5 minutes", "3 days").`,
    );
  }
  const unit = found[2].toLowerCase();
  const key = unit.startsWith("ms") || unit.startsWith("milli") ? "ms" : unit[0];
  return Number(found[1]) * UNIT_MS[key];
}

class StepParked extends Error {
  constructor(until) {
    super(`The run is parked until ${new Date(until).toISOString()}.`);
    this.name = "StepParked";
  }
}

const notARun = () => {
  throw new TypeError(
    "ctx.step keeps its steps in a durable run: call this function as a run (Prefer: respond-async, a schedule or ctx.enqueue).",
  );
};
const noSteps = Object.freeze({ run: notARun, sleep: notARun, sleepUntil: notARun, waitForEvent: notARun });

// The journal could not be reached: not the code's failure, so the attempt ends as the
// platform's (retried without spending the retry policy's attempts).
const PLATFORM_CODES = new Set(["control_plane_unavailable", "run_not_running"]);

function stepsFor(call) {
  const names = new Set();
  let journal = null;
  const step = (op, fields) =>
    ask({ t: "step", op, ...fields }).catch((err) => {
      if (err instanceof BindingError && PLATFORM_CODES.has(err.code)) call.platform = err.message;
      throw err;
    });
  const known = () => (journal ??= step("journal", {}).then((j) => j.steps));
  const named = (name) => {
    if (typeof name !== "string" || name === "") throw new TypeError("A step needs a name.");
    if (names.has(name)) throw new Error(`Step names are unique in a run: "${name}" came twice.`);
    names.add(name);
    return name;
  };
  const park = (until, kind) => {
    call.parked = { until, kind };
    throw new StepParked(until);
  };
  const sleepUntil = async (name, until) => {
    named(name);
    if ((await known())[name]?.status === "done") return;
    const answer = await step("sleep", { name, until });
    if (!answer.done) park(answer.parked, "sleep");
  };
  return Object.freeze({
    async run(name, work) {
      named(name);
      const kept = (await known())[name];
      if (kept?.status === "done") return parseJson(kept.result ?? "null");
      const tried = { started: now(), lines: [] };
      let value;
      try {
        value = await inStep.run(tried, work);
      } catch (err) {
        if (!call.parked) {
          await step("failed", { name, error: describe(err).message, ...tried }).catch(() => {});
        }
        throw err;
      }
      const text = stringify(value === undefined ? null : value);
      if (text === undefined) throw new TypeError(`Step "${name}" returned something that is not JSON.`);
      return parseJson((await step("done", { name, result: text, ...tried })).result); // the first kept wins
    },
    sleep: (name, duration) => sleepUntil(name, now() + durationMs(duration)),
    sleepUntil: (name, date) => sleepUntil(name, new Date(date).getTime()),
    async waitForEvent(name, options) {
      named(name);
      const { timeout, match, event } = options ?? {};
      const kept = (await known())[name];
      if (kept?.status === "done") return parseJson(kept.result ?? "null");
      const until = now() + durationMs(timeout ?? "7 days");
      const answer = await step("wait", { name, event: event ?? name, until, match: match ?? null });
      if (answer.done) return parseJson(answer.result ?? "null");
      park(answer.parked, "wait");
    },
  });
}

async function enqueue(fn, payload, options) {
  const { delay, idempotencyKey, worker } = options ?? {};
  if (typeof fn !== "string" || fn === "") throw new TypeError("ctx.enqueue needs a function's name.");
  const text = stringify(payload === undefined ? null : payload);
  if (text === undefined) throw new TypeError("The payload of ctx.enqueue must be JSON.");
  const run = await ask({
    t: "enqueue",
    function: fn,
    payload: text,
    worker: worker ?? null,
    delay: delay ?? 0,
    idempotencyKey: idempotencyKey ?? "",
  });
  return { runId: run.runId, status: run.status };
}

/** An event to a run (`run`), or to every run of a worker (`worker`, this one by default) that
 * waits for it. */
async function sendEvent(name, payload, options) {
  if (typeof name !== "string" || name === "") throw new TypeError("An event needs a name.");
  const text = stringify(payload === undefined ? null : payload);
  if (text === undefined) throw new TypeError("An event's payload must be JSON.");
  const { run, worker } = options ?? {};
  // (`to`: `run` in an ask is the pool's to set, the run this call belongs to)
  const sent = await ask({ t: "event", name, payload: text, to: run ?? null, worker: worker ?? null });
  return { delivered: sent.delivered };
}

function contextFor(msg) {
  const call = calls.getStore();
  return Object.freeze({
    env: globalThis.process.env,
    requestId: msg.id,
    kv: kvBindings,
    enqueue,
    sendEvent,
    step: msg.run ? stepsFor(call) : noSteps,
    waitUntil(work) {
      call.waits.push(
        Promise.resolve(work).catch((err) => {
          console.error("Work after the answer (ctx.waitUntil) failed:", err);
        }),
      );
    },
  });
}

async function run(msg) {
  const call = calls.getStore();
  mark(call);
  let done = await invoke(msg);
  if (call.platform && !call.parked) {
    const message = `The run's journal could not be reached (${call.platform}); the attempt is tried again.`;
    done = {
      t: "done",
      id: msg.id,
      ok: false,
      code: "control_plane_unavailable",
      error: { name: "Error", message, stack: "" },
    };
  } else if (call.parked) {
    // A step parked the run (whatever the code did with the signal): the call ends here.
    const { until, kind } = call.parked;
    const parked = { name: "StepParked", message: new StepParked(until).message, stack: "" };
    done = {
      t: "done",
      id: msg.id,
      ok: false,
      code: "run_parked",
      error: Object.assign(parked, { parked: { until, kind } }),
    };
  }
  reportDropped(call); // before "done", so the marker is in the answer too
  // What the call made without counting (response bodies, Buffers) is seen here.
  if (memory.unlooked > 0 || now() - memory.lastLook > 100) lookAtMemory();
  // Work it asked to finish after the answer: the answer leaves now, the call stays open
  // (its deadline and CPU limit still apply) until that work has settled.
  const waiting = call.waits.length > 0;
  if (waiting) done.waiting = true;
  post(done);
  if (waiting) {
    for (let i = 0; i < call.waits.length; i++) await call.waits[i]; // more may be added meanwhile
    reportDropped(call);
    post({ t: "after", id: msg.id });
  }
  inFlight--;
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
  if (msg.http) return await serve(msg, mod);
  mark(calls.getStore());
  const fn = mod[msg.fn];
  if (typeof fn !== "function") {
    return {
      t: "done",
      id: msg.id,
      ok: false,
      code: "function_not_found",
      error: { name: "Error", message: `No exported function named ${msg.fn}`, stack: "" },
    };
  }
  let value;
  try {
    value = await fn(msg.payload, contextFor(msg));
  } catch (err) {
    return { t: "done", id: msg.id, ok: false, code: "function_error", error: describe(err) };
  }
  let json;
  try {
    json = stringify(value === undefined ? null : value);
    if (json === undefined) json = "null"; // functions and symbols stringify to undefined
  } catch (err) {
    return {
      t: "done",
      id: msg.id,
      ok: false,
      code: "result_not_serializable",
      error: {
        name: "TypeError",
        message: `The function's result is not JSON: ${/** @type {Error} */ (err).message}`,
        stack: "",
      },
    };
  }
  return { t: "done", id: msg.id, ok: true, json };
}

// --- raw HTTP: the default export's fetch handler ------------------------------------------
// The host sends the request whole (its body read within the deployment's limit); the answer
// leaves as a head, then the body's chunks as they come (each sent at once, so a stream is a
// stream), then "done". A chunk is copied into its own buffer, which moves to the host.
const readers = new Map();
const NativeUint8Array = Uint8Array;

async function serve(msg, mod) {
  const handler = mod.default;
  if (!handler || typeof handler.fetch !== "function") {
    return {
      t: "done",
      id: msg.id,
      ok: false,
      code: "not_found",
      error: {
        name: "Error",
        message:
          "This deployment has no fetch handler (a default export with fetch(request)); invoke its functions with POST /api/invoke/<function>.",
        stack: "",
      },
    };
  }
  const { method, url, headers, body } = msg.http;
  let response;
  try {
    const request = new NativeRequest(url, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? undefined : body,
    });
    response = await handler.fetch(request, contextFor(msg));
  } catch (err) {
    return { t: "done", id: msg.id, ok: false, code: "function_error", error: describe(err) };
  }
  if (!(response instanceof NativeResponse)) {
    return {
      t: "done",
      id: msg.id,
      ok: false,
      code: "function_error",
      error: {
        name: "TypeError",
        message: `The fetch handler must return a Response, not ${format([response]).slice(0, 80)}.`,
        stack: "",
      },
    };
  }
  postMessage({
    t: "head",
    id: msg.id,
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers],
  });
  if (response.body && method !== "HEAD") {
    const reader = response.body.getReader();
    readers.set(msg.id, reader);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        // Whatever the tenant's stream yields: strings and ArrayBuffers too, not only bytes.
        const chunk = /** @type {string | ArrayBuffer | Uint8Array} */ (/** @type {unknown} */ (value));
        const bytes = typeof chunk === "string"
          ? utf8(chunk)
          : new NativeUint8Array(chunk instanceof ArrayBuffer ? chunk.slice(0) : chunk);
        postMessage({ t: "chunk", id: msg.id, bytes }, [bytes.buffer]);
      }
    } catch (err) {
      if (readers.has(msg.id)) console.error("The response body failed:", err);
    } finally {
      readers.delete(msg.id);
    }
  }
  return { t: "done", id: msg.id, ok: true, json: "null", streamed: true };
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
  const call = calls.getStore();
  const answer = await new Promise((resolve) => {
    outbound.set(id, (value) => {
      mark(call);
      resolve(value);
    });
    // `call` lets the host serve a request to another of the platform's workers as part
    // of this call (the same release generation; see host.ts).
    const message = {
      t: "fetch",
      id,
      call: call?.id,
      url: request.url,
      method: request.method,
      headers: [...request.headers],
      body,
    };
    port.postMessage(message, body ? [body] : []); // at once: the call waits for it
  });
  if (!answer.ok) throw new TypeError(answer.error);
  const empty = answer.status === 204 || answer.status === 205 || answer.status === 304;
  const response = new NativeResponse(empty ? null : answer.body, {
    status: answer.status,
    statusText: answer.statusText,
    headers: answer.headers,
  });
  Object.defineProperty(response, "url", { value: answer.url });
  return response;
}
globalThis.fetch = fetchThroughHost;

port.onmessage = (event) => {
  const msg = event.data;
  if (msg.t === "init") {
    Object.assign(limits, msg.limits ?? {});
    attach(msg.ring);
    running = new Int32Array(msg.running);
    // The deployment's secrets, as process.env (also what node:process exports); the
    // isolate has no access to the host's real environment.
    Object.defineProperty(globalThis.process, "env", {
      value: Object.freeze({ ...(msg.env ?? {}) }),
      configurable: true,
    });
    kvBindings = Object.freeze(Object.fromEntries((msg.kv ?? []).map((name) => [name, namespace(name)])));
    keepMap(msg.code);
    const url = URL.createObjectURL(new Blob([msg.code], { type: "text/javascript" }));
    loaded = import(url);
    loaded.then(
      () => post({ t: "loaded" }),
      (err) => post({ t: "load_error", error: describe(err) }),
    );
  } else if (msg.t === "ping") {
    // This thread is free: no call holds it. Counted where the host reads it at once (an
    // answering message would wait behind whatever keeps the host's thread busy, and be
    // judged late).
    if (running) atomicAdd(running, 1, 1);
  } else if (msg.t === "cancel") {
    // The caller went away, or the body passed its limit: stop reading the handler's body.
    const reader = readers.get(msg.id);
    readers.delete(msg.id);
    reader?.cancel().catch(() => {});
  } else if (msg.t === "asked") {
    asked.get(msg.id)?.(msg.answer);
    asked.delete(msg.id);
  } else if (msg.t === "fetched") {
    outbound.get(msg.id)?.(msg.answer);
    outbound.delete(msg.id);
  } else if (msg.t === "calls") {
    inFlight += msg.list.length;
    for (const call of msg.list) {
      calls.run({ id: call.id, n: call.n, fn: call.fn, seq: 0, lines: 0, dropped: 0, waits: [] }, () => run(call));
    }
  }
};
