// One isolate per deployment, created on first call. A call that runs past its timeout
// stops that isolate (the only way to stop a busy loop), and so does going over the memory
// limit; the next call gets a fresh one, and other deployments are never touched.
import { Worker as NodeWorker } from "node:worker_threads";
import { type ConfigField, ERROR_CODES, type ErrorCode, type Same, statusOf } from "./contract.ts";
import type { FetchAnswer, FetchRequest } from "./egress.ts";
import { LogRing, ringBytes } from "./ring.ts";
import { sendSoon } from "./wire.ts";

export type LogLine = { seq: number; level: string; message: string; timestamp: string };

export type Outcome = {
  status: number;
  code?: ErrorCode;
  json?: string; // the result, already JSON
  error?: { name: string; message: string; stack: string };
  logs: LogLine[];
  // A fetch handler's answer: status and headers as soon as it returned, the body streamed.
  response?: {
    status: number;
    statusText: string;
    headers: [string, string][];
    body: ReadableStream<Uint8Array> | null;
  };
};

/** A raw HTTP request for the fetch handler, its body already read within the limit. */
export type HttpRequest = { method: string; url: string; headers: [string, string][]; body: ArrayBuffer | null };

export type DeploymentConfig = {
  id: string;
  tenant: number;
  public: boolean;
  host: string;
  functions: string[];
  http: boolean; // the default export is a fetch handler
  artifact: string;
  timeoutMs: number;
  cpuMs: number;
  maxBodyBytes: number;
  invocationsPerMinute: number;
  maxLogLines: number;
  maxLineBytes: number;
  maxConcurrency: number;
  maxResultBytes: number;
  memoryMb: number;
  env: Record<string, string>;
  kv: Record<string, string>; // binding -> namespace id
};
// The configuration's fields are the contract's, no more and no fewer: `deno check` fails
// here when either side changes alone (deployments/config.py is held to it by
// tests/test_contract.py).
const _configIsTheContracts: Same<keyof DeploymentConfig, ConfigField> = true;

/** What a call passes to the calls it makes to other workers of the platform: its tenant's
 * release generation when it came through a production URL, and how deep the chain is. */
export type Pin = { tenant: number; generation: number | null; depth: number; run?: string };

/** Serves an isolate's request in this host when it is for one of the platform's workers;
 * null when it is for the outside world (then the egress policy applies). */
export type Internal = (req: FetchRequest, pin: Pin | undefined) => Promise<FetchAnswer> | null;
/** What an isolate asked of its bindings (ctx.kv, ctx.enqueue): {t: "kv", b, op, key, ...} or
 * {t: "enqueue", function, payload, ...}; answered {ok: true, value} or {ok: false, code,
 * message}, with the buffers to move (a value read). */
export type BindingAnswer =
  | { ok: true; value: unknown; transfer?: ArrayBuffer[] }
  | { ok: false; code: string; message: string };
// deno-lint-ignore no-explicit-any
export type Bindings = (config: DeploymentConfig, asked: any) => Promise<BindingAnswer>;
let bindings: Bindings = () =>
  Promise.resolve({ ok: false, code: "runtime_error", message: "Bindings are not served here." });
export function serveBindings(handler: Bindings) {
  bindings = handler;
}

let internal: Internal = () => null;
export function serveInternally(handler: Internal) {
  internal = handler;
}

type Pending = {
  pin?: Pin;
  n: number; // the call's number, which the isolate writes where the host can read it
  logs: LogLine[];
  resolve: (o: Outcome) => void;
  deadline: number;
  timeoutMs: number;
  body?: ReadableStreamDefaultController<Uint8Array>; // a fetch handler's body, streaming
  sent?: number; // its bytes so far
  answered?: boolean; // its head went out: the outcome is resolved
  after?: boolean; // answered, and its work after the answer (ctx.waitUntil) still runs
};

export type LateLog = (
  deploymentId: string,
  requestId: string | null,
  fn: string,
  line: LogLine,
) => void;

async function dataUrl(file: string): Promise<string> {
  const bytes = await Deno.readFile(new URL(file, import.meta.url));
  return `data:text/javascript;base64,${btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""))}`;
}

/** What the host holds of one isolate: its port, and a way to stop it. */
export type Channel = {
  id: number;
  port: MessagePort;
  memoryMb: number;
  stop: () => void;
  gone?: Ended; // set if it ended before anyone held it (a spare that died unused)
};
type Ended = { code: string; message: string; exitCode?: number };

// Every permission this process was started with, given up before its first isolate starts.
const PERMISSIONS = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

// The outbound requests of this process's isolates, made by the network thread (network.ts).
let network: Worker | null = null;
const outboundWaiting = new Map<number, (answer: FetchAnswer) => void>();
let nextOutbound = 1;

function outbound(req: FetchRequest, timeoutMs: number): Promise<FetchAnswer> {
  if (network === null) return Promise.resolve({ ok: false, error: "Outbound requests are not available here." });
  const id = nextOutbound++;
  return new Promise((resolve) => {
    outboundWaiting.set(id, resolve);
    network!.postMessage({ id, req, timeoutMs }, req.body ? [req.body] : []);
  });
}

function startNetwork(): Promise<Worker> {
  const worker = new Worker(new URL("./network.ts", import.meta.url), {
    type: "module",
    deno: {
      permissions: {
        net: true,
        env: ["RUNTIME_EGRESS_ALLOW", "RUNTIME_EGRESS_DENY"],
        read: [new URL(".", import.meta.url)],
        write: false,
        run: false,
        ffi: false,
        sys: false,
        import: false,
      },
    },
  } as WorkerOptions);
  worker.onerror = (e) => {
    console.error(`runtime: the sandbox's network thread failed (${e.message}); exiting`);
    Deno.exit(70);
  };
  // Its modules are read with this process's permissions: it must have loaded them before
  // the process gives up reading files.
  return new Promise((resolve) => {
    worker.onmessage = () => {
      worker.onmessage = (e: MessageEvent<{ id: number; answer: FetchAnswer }>) => {
        outboundWaiting.get(e.data.id)?.(e.data.answer);
        outboundWaiting.delete(e.data.id);
      };
      resolve(worker);
    };
  });
}

/** Starts and stops the isolates of this sandbox process, from its main thread, and says when
 * one died. Isolates are node:worker_threads workers, the only kind that takes a heap limit
 * (resourceLimits): one that goes over it is stopped on its own (ERR_WORKER_OUT_OF_MEMORY)
 * instead of taking the whole process down. They share this thread's permissions, which are
 * none: `start` reads what it needs, starts the network thread and then gives up every
 * permission the process had.
 * (Started from a permission-less Web Worker instead, as before, each isolate began running
 * only ~500 ms after it was made; from this thread, 35-60 ms.) */
export class Sandbox {
  private isolateUrl = "";
  private ended = new Map<number, (why: Ended) => void>();
  private workers = new Map<number, NodeWorker>();
  private nextId = 1;

  async start(): Promise<void> {
    this.isolateUrl = await dataUrl("./isolate.js");
    network = await startNetwork(); // with its own permissions: what is given up below stays its
    for (const name of PERMISSIONS) Deno.permissions.revokeSync({ name } as Deno.PermissionDescriptor);
    for (const name of PERMISSIONS) {
      if (Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted") {
        console.error(`runtime: the sandbox process could not give up its ${name} permission; exiting`);
        Deno.exit(70);
      }
    }
  }

  isolate(memoryMb: number, onEnd: (why: Ended) => void): Channel {
    const id = this.nextId++;
    const { port1, port2 } = new MessageChannel();
    this.ended.set(id, onEnd);
    const end = (why: Ended) => {
      this.workers.delete(id);
      const done = this.ended.get(id);
      this.ended.delete(id);
      done?.(why); // the first word of its end counts (an error, then its exit)
    };
    const worker = new NodeWorker(new URL(this.isolateUrl), {
      resourceLimits: { maxOldGenerationSizeMb: memoryMb },
      workerData: { port: port2 },
      transferList: [port2 as unknown as Transferable],
    } as unknown as WorkerOptions);
    this.workers.set(id, worker);
    worker.on(
      "error",
      (err: Error & { code?: string }) => end({ code: err?.code ?? "", message: String(err?.message ?? err) }),
    );
    worker.on("exit", (exitCode: number) => end({ code: "", message: "", exitCode }));
    return { id, port: port1, memoryMb, stop: () => void this.workers.get(id)?.terminate() };
  }

  /** Lets the death of an isolate be told to whoever holds it now (a spare changes hands). */
  rebind(channel: Channel, onEnd: (why: Ended) => void) {
    if (this.ended.has(channel.id)) this.ended.set(channel.id, onEnd);
  }
}

export class Isolate {
  private pending = new Map<string, Pending>();
  private outbox: { id: string; n: number; fn: string; payload: unknown; http?: HttpRequest; run?: string }[] = [];
  // CPU time: the isolate writes the number of the call whose code it runs into `running[0]`;
  // while calls are in flight the host pings it, and an isolate that does not answer within
  // the deployment's cpuMs has held its thread that long without a pause. It answers by
  // counting the pings it saw in `running[1]`, which the host reads on its tick: a message
  // would queue behind a host thread that was busy (a loaded machine) and look late.
  private running = new Int32Array(new SharedArrayBuffer(8));
  private pings = 0;
  private nextNumber = 1;
  private pingSentAt: number | null = null;
  private lastPong = performance.now();
  private ring: LogRing;
  dead = false;
  private heard = false; // it said something: its thread runs
  retiring = false; // a call timed out in it: it takes no new calls, and ends when idle
  lastUsed = Date.now();
  /** Settles once its module is evaluated, or could not be, or the isolate ended (calls wait
   * for it inside the isolate; a preload waits for it here). */
  readonly loaded: Promise<void>;
  private settleLoad!: () => void;

  constructor(
    readonly config: DeploymentConfig,
    code: string,
    private channel: Channel,
    sandbox: Sandbox,
    private lateLog: LateLog,
    private hooks: {
      dead: (iso: Isolate) => void;
      retire: (iso: Isolate) => void;
      busy: (iso: Isolate) => void;
      held: (message: string) => void;
    },
  ) {
    this.loaded = new Promise((resolve) => (this.settleLoad = resolve));
    channel.port.onmessage = (e) => this.receive(e.data);
    sandbox.rebind(channel, (why) => this.ended(why));
    if (channel.gone) queueMicrotask(() => this.ended(channel.gone!));
    const limits = { maxLines: config.maxLogLines, maxLineBytes: config.maxLineBytes, memoryMb: config.memoryMb };
    this.ring = new LogRing(ringBytes(config.maxLineBytes));
    channel.port.postMessage({
      t: "init",
      code,
      limits,
      env: config.env ?? {},
      kv: Object.keys(config.kv ?? {}),
      ring: this.ring.buffer,
      running: this.running.buffer,
    });
  }

  private ended(why: Ended) {
    if (why.code === "ERR_WORKER_OUT_OF_MEMORY") {
      this.kill(
        "memory_limit_exceeded",
        `Memory limit exceeded: the deployment used more than its ${this.channel.memoryMb} MB and its isolate was stopped.`,
      );
    } else if (why.message) {
      this.kill("isolate_crashed", `The isolate crashed: ${why.message}`);
    } else {
      this.kill("isolate_crashed", `The isolate stopped unexpectedly (exit code ${why.exitCode ?? "?"}).`);
    }
  }

  call(
    requestId: string,
    fn: string,
    payload: unknown,
    timeoutMs: number,
    http?: HttpRequest,
    pin?: Pin,
  ): Promise<Outcome> {
    this.lastUsed = Date.now();
    return new Promise((resolve) => {
      // No timer per call (one costs more than the call's messages): the pool's tick
      // looks at the deadlines.
      const n = this.nextNumber++;
      if (this.pending.size === 0) this.hooks.busy(this);
      this.pending.set(requestId, { n, logs: [], resolve, deadline: performance.now() + timeoutMs, timeoutMs, pin });
      const item = http ? { id: requestId, n, fn, payload, http } : { id: requestId, n, fn, payload };
      // A durable run's call: its code has ctx.step (the run itself is asked by the pool).
      if (this.outbox.push(pin?.run ? { ...item, run: pin.run } : item) === 1) {
        sendSoon(this.send, this.pending.size > 1); // the calls of this turn in one message
      }
    });
  }

  private send = () => {
    if (this.dead || !this.outbox.length) return;
    const list = this.outbox;
    this.outbox = [];
    const moved = list.flatMap((c) => (c.http?.body ? [c.http.body] : []));
    this.channel.port.postMessage({ t: "calls", list }, moved);
  };

  /** Called often by the pool: hands on new console lines and stops calls past their time. */
  tick(now: number) {
    if (this.ring.pending) this.readLines();
    if (this.pending.size === 0) {
      this.pingSentAt = null;
      if (this.retiring) this.kill("evicted", "The isolate was stopped after a call in it timed out.");
      return;
    }
    if (this.pingSentAt !== null) this.ponged();
    if (this.pingSentAt === null) {
      if (now - this.lastPong > Math.min(PING_EVERY_MS, this.config.cpuMs / 4)) {
        this.pingSentAt = now;
        this.pings++;
        this.channel.port.postMessage({ t: "ping" });
      }
    } else if (now - this.pingSentAt > this.config.cpuMs && !this.heard) {
      // Its thread has not started yet (a fresh sandbox boots its isolates): not a held
      // thread. Ask again; the call's deadline still applies.
      this.pingSentAt = null;
    } else if (now - this.pingSentAt > this.config.cpuMs) {
      const ms = this.config.cpuMs;
      this.stopFor(
        "cpu_limit_exceeded",
        `The function used more than its ${ms} ms of CPU time without a pause and was stopped ` +
          "(waiting on fetch or a timer is a pause; a loop that never ends is not).",
        `Another call to this deployment ran past its CPU time limit (${ms} ms) and its isolate was restarted; retry.`,
      );
      return;
    }
    for (const [requestId, call] of this.pending) {
      if (call.deadline > now) continue;
      if (call.after) {
        // Its work after the answer ran past the call's time: stopped with the isolate once
        // the isolate's other calls have ended (it takes no new ones meanwhile).
        this.pending.delete(requestId);
        this.lateLog(
          this.config.id,
          requestId,
          "",
          this.note(
            "error",
            `The work after the answer (ctx.waitUntil) did not finish within ${call.timeoutMs} ms and was stopped.`,
          ),
        );
        this.retire();
        continue;
      }
      if (call.answered) {
        this.pending.delete(requestId);
        // A body still streaming at the deadline is cut, and the isolate stopped as for any
        // call past its time.
        call.body?.error(new Error(`the response did not finish within ${call.timeoutMs} ms`));
        this.lateLog(
          this.config.id,
          requestId,
          "fetch",
          this.note("error", `The response body did not finish within ${call.timeoutMs} ms and was cut.`),
        );
        this.kill(
          "isolate_restarted",
          "Another call to this deployment timed out and its isolate was restarted; retry.",
        );
        return;
      }
      const message = `The function did not finish within ${call.timeoutMs} ms and was stopped ` +
        "(something it waits for that never comes, a loop that never ends, or memory held at " +
        `the deployment's limit of ${this.channel.memoryMb} MB).`;
      if (this.pingSentAt === null || now - this.pingSentAt < STUCK_MS) {
        // The isolate still answers: that call alone ends. Its work may go on inside, so the
        // isolate takes no new calls and ends once the others in it have.
        this.pending.delete(requestId);
        call.resolve({
          status: statusOf("timeout"),
          code: "timeout",
          logs: call.logs,
          error: { name: "TimeoutError", message, stack: "" },
        });
        this.retire();
        continue;
      }
      // The isolate's thread is held (a loop, or garbage collection at the memory limit): the
      // only way to stop it is to stop the isolate. The call running gets the timeout.
      this.stopFor(
        "timeout",
        message,
        "Another call to this deployment held its isolate past its time and the isolate was restarted; retry.",
        call,
      );
      return;
    }
    if (this.retiring && this.pending.size === 0) {
      this.kill("evicted", "The isolate was stopped after a call in it timed out.");
    }
  }

  /** Notes that the isolate answered the last ping, if it has: its thread is free. */
  private ponged() {
    if (Atomics.load(this.running, 1) !== this.pings) return;
    this.heard = true;
    this.pingSentAt = null;
    this.lastPong = performance.now();
  }

  /** Stops the isolate because one call holds its thread: that call (the one the isolate says
   * it runs, else `fallback`) ends with `code`; the others with a retryable error. */
  private stopFor(code: ErrorCode, message: string, others: string, fallback?: Pending) {
    const number = Atomics.load(this.running, 0);
    let culprit = [...this.pending.entries()].find(([, c]) => c.n === number);
    if (!culprit && fallback) culprit = [...this.pending.entries()].find(([, c]) => c === fallback);
    if (culprit && !culprit[1].answered) {
      this.readLines(); // its lines before it was stopped
      this.pending.delete(culprit[0]);
      culprit[1].resolve({
        status: statusOf(code),
        code,
        logs: culprit[1].logs,
        error: { name: code === "timeout" ? "TimeoutError" : "RangeError", message, stack: "" },
      });
    }
    this.kill("isolate_restarted", others);
    this.hooks.held(message);
  }

  private readLines() {
    const intact = this.ring.drain((line) => {
      const entry = {
        seq: line.seq,
        level: line.level,
        message: line.message,
        timestamp: new Date(line.ts).toISOString(),
      };
      const call = line.id ? this.pending.get(line.id) : undefined;
      if (call) call.logs.push(entry);
      // Every line also goes to the control plane as it is printed (the live tail), including
      // lines printed after a call answered (a timer it left behind) or outside any call.
      this.lateLog(this.config.id, line.id || null, line.fn, entry);
    });
    if (!intact) {
      this.kill("isolate_crashed", "The isolate wrote garbage where its console lines go and was stopped.");
    }
  }

  // The isolate's messages (isolate.js, plain JavaScript) come in a dozen shapes, told apart by `t`.
  // deno-lint-ignore no-explicit-any
  private receive(msg: any) {
    this.heard = true;
    if (msg.t === "batch") {
      this.readLines(); // an answer's lines were written before it was sent
      for (const item of msg.list) this.receive(item);
      return;
    }
    if (msg.t === "fetch") {
      const pin = msg.call ? this.pending.get(msg.call)?.pin : undefined;
      (internal(msg, pin) ?? outbound(msg, this.config.timeoutMs)).then((answer) => {
        if (!this.dead) {
          this.channel.port.postMessage({ t: "fetched", id: msg.id, answer }, answer.ok ? [answer.body] : []);
        }
      });
      return;
    }
    if (msg.t === "kv" || msg.t === "enqueue" || msg.t === "step" || msg.t === "event") {
      // Which run a step belongs to is the pool's to say (from the call it started), never
      // the isolate's.
      const run = msg.call ? this.pending.get(msg.call)?.pin?.run : undefined;
      bindings(this.config, { ...msg, run, request: msg.call }).then((answer) => {
        if (this.dead) return;
        const transfer = answer.ok ? answer.transfer ?? [] : [];
        const sent = answer.ok ? { ok: true, value: answer.value } : answer;
        this.channel.port.postMessage({ t: "asked", id: msg.id, answer: sent }, transfer);
      });
      return;
    }
    if (msg.t === "head") {
      this.readLines();
      const call = this.pending.get(msg.id);
      if (!call) return;
      call.answered = true;
      call.sent = 0;
      const body = msg.status === 204 || msg.status === 205 || msg.status === 304
        ? null
        : new ReadableStream<Uint8Array>({
          start: (controller) => void (call.body = controller),
          cancel: () => {
            // The caller went away: stop the handler's body, forget the call.
            if (this.pending.get(msg.id) === call) this.pending.delete(msg.id);
            if (!this.dead) this.channel.port.postMessage({ t: "cancel", id: msg.id });
          },
        });
      call.resolve({
        status: msg.status,
        logs: call.logs,
        response: { status: msg.status, statusText: msg.statusText, headers: msg.headers, body },
      });
      return;
    }
    if (msg.t === "chunk") {
      const call = this.pending.get(msg.id);
      if (!call?.body) return;
      call.sent! += msg.bytes.byteLength;
      if (call.sent! > this.config.maxResultBytes) {
        this.pending.delete(msg.id);
        call.body.error(new Error("response too large"));
        this.lateLog(
          this.config.id,
          msg.id,
          "fetch",
          this.note("error", `The response body passed the limit of ${this.config.maxResultBytes} bytes and was cut.`),
        );
        this.channel.port.postMessage({ t: "cancel", id: msg.id });
        return;
      }
      call.body.enqueue(msg.bytes);
      return;
    }
    if (msg.t === "loaded" || msg.t === "load_error") {
      this.settleLoad(); // a load error is the first call's to tell
      return;
    }
    if (msg.t === "memory") {
      const usedMb = Math.ceil(msg.used / 1048576); // over the limit: never shown equal to it
      this.kill(
        "memory_limit_exceeded",
        `Memory limit exceeded: the deployment held ${usedMb} MB (heap and buffers), more than its ${this.channel.memoryMb} MB, and its isolate was stopped.`,
      );
      return;
    }
    if (msg.t === "after") {
      // The work it asked to finish after its answer (ctx.waitUntil) has settled.
      this.readLines();
      this.pending.delete(msg.id);
      return;
    }
    if (msg.t !== "done") return;
    const call = this.pending.get(msg.id);
    if (!call) return;
    // With work after the answer (ctx.waitUntil), the call stays pending (its deadline and CPU
    // limit hold) until that work says "after"; the answer leaves now all the same.
    if (msg.waiting) call.after = true;
    else this.pending.delete(msg.id);
    if (call.answered) {
      // A fetch handler's head went out already: its body ends here.
      try {
        call.body?.close();
      } catch {
        // the caller cancelled it
      }
      call.body = undefined;
      return;
    }
    call.answered = msg.waiting === true;
    if (msg.ok && msg.json.length > this.config.maxResultBytes) {
      // Length in UTF-16 units: a cheap lower bound of the UTF-8 size, enough for a cap.
      call.resolve({
        status: statusOf("result_too_large"),
        code: "result_too_large",
        error: {
          name: "RangeError",
          message: `The function's result is larger than ${this.config.maxResultBytes} bytes.`,
          stack: "",
        },
        logs: call.logs,
      });
    } else if (msg.ok) {
      call.resolve({ status: 200, json: msg.json, logs: call.logs });
    } else {
      const code = (msg.code in ERROR_CODES ? msg.code : "function_error") as ErrorCode;
      call.resolve({ status: statusOf(code), code, error: msg.error, logs: call.logs });
    }
  }

  /** A line the platform adds to a call's logs (a cut body): shown in the live tail. */
  private note(level: string, message: string): LogLine {
    return { seq: 1_000_000, level, message, timestamp: new Date().toISOString() };
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  kill(code: ErrorCode, message: string) {
    if (this.dead) return;
    const status = statusOf(code);
    this.dead = true;
    this.settleLoad();
    this.readLines(); // what it printed before it was stopped (a loop, its memory limit)
    this.channel.stop();
    this.channel.port.close();
    for (const [id, call] of this.pending) {
      if (call.answered) call.body?.error(new Error(message));
      else call.resolve({ status, code, error: { name: "Error", message, stack: "" }, logs: call.logs });
      this.pending.delete(id);
    }
    this.hooks.dead(this);
  }

  /** No new calls: a fresh isolate takes them; this one ends once its calls have. */
  private retire() {
    if (this.retiring) return;
    this.retiring = true;
    this.hooks.retire(this);
  }
}

// How often the host reads the isolates' console lines (the live tail's delay) and looks
// for calls past their deadline (how late a timeout may answer).
const TICK_MS = 10;
const IDLE_TICK_MS = 1000;
// While calls are in flight, how long an isolate may be silent before it is pinged, and how
// long an unanswered ping means its thread is held (then a call at its deadline stops it).
const PING_EVERY_MS = 100;
const STUCK_MS = 50;

const SPARE_QUIET_MS = 100; // after a spare was taken, before the next one is started
const SPARE_EVERY_MS = 20; // between two spares started in a row

export class Pool {
  private isolates = new Map<string, Isolate>();
  private draining = new Set<Isolate>(); // retired, finishing their calls
  private active = new Set<Isolate>(); // with calls in flight (ticked every time)
  private sandbox: Sandbox;
  private baseRss = Deno.memoryUsage().rss; // before any deployment is loaded
  private ready: Promise<void>;

  constructor(
    private loadCode: (config: DeploymentConfig) => Promise<string>,
    private lateLog: LateLog,
    private limits: {
      idleMs: number;
      maxIsolates: number;
      defaultMemoryMb: number;
      spares: number;
      memoryBudgetBytes: number;
    },
    // A thread held past its limit was stopped: V8 cannot interrupt everything (a regular
    // expression backtracking for minutes, a long synchronous hash), and a terminated thread
    // may run on, so the process that holds it must end (cell.ts).
    private onHeld: (message: string) => void = () => {},
  ) {
    this.sandbox = new Sandbox();
    this.ready = this.sandbox.start();
    this.ready.then(() => (this.baseRss = Deno.memoryUsage().rss));
    setInterval(() => this.evictIdle(), Math.min(10_000, limits.idleMs));
  }

  private ticks = 0;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private tickerMs = 0;

  // Isolates with calls in flight (or retired and finishing) are ticked every TICK_MS. When
  // every loaded isolate is idle, the sandbox looks once a second (lines a stray timer
  // prints outside any call, a retired isolate to stop): a timer waking a Deno process ten
  // times a second costs 0.3% of a core by itself, and a host with 64 idle sandboxes spent a
  // quarter of a core on it (bench/growth.py). A sandbox with nothing loaded does not tick.
  private pace() {
    const ms = this.active.size || this.draining.size ? TICK_MS : this.isolates.size ? IDLE_TICK_MS : 0;
    if (ms === this.tickerMs) return;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = ms ? setInterval(() => this.tick(), ms) : null;
    this.tickerMs = ms;
  }

  private tick() {
    const now = performance.now();
    const all = this.tickerMs > TICK_MS || this.ticks++ % 10 === 0;
    for (const iso of this.active) {
      if (!iso.busy) this.active.delete(iso);
      else if (!all) iso.tick(now);
    }
    if (all) { for (const iso of this.isolates.values()) iso.tick(now); }
    for (const iso of this.draining) iso.tick(now);
    this.pace();
  }

  /** Stops isolates nobody called for a while; a later call starts a fresh one (cold). */
  evictIdle() {
    const cutoff = Date.now() - this.limits.idleMs;
    for (const iso of [...this.isolates.values()]) {
      if (!iso.busy && iso.lastUsed < cutoff) iso.kill("evicted", "The isolate was idle and stopped.");
    }
    this.stopLeastRecentlyUsed(this.overBudget(), "to keep the host within its memory budget");
  }

  /** How many isolates to stop so the process gets back under its memory budget, judged by
   * its resident memory and what an isolate has cost on average. */
  private overBudget(): number {
    const rss = Deno.memoryUsage().rss;
    if (rss <= this.limits.memoryBudgetBytes || this.isolates.size === 0) return 0;
    const each = Math.max(1, (rss - this.baseRss) / this.isolates.size);
    return Math.ceil((rss - this.limits.memoryBudgetBytes * 0.9) / each);
  }

  private stopLeastRecentlyUsed(count: number, why: string) {
    const idle = [...this.isolates.values()].filter((iso) => !iso.busy).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const iso of idle.slice(0, count)) iso.kill("evicted", `The isolate was stopped ${why}.`);
  }

  /** Makes room for one more isolate by stopping the least recently used idle ones. */
  private makeRoom() {
    const overCount = this.isolates.size + 1 - this.limits.maxIsolates;
    this.stopLeastRecentlyUsed(Math.max(overCount, this.overBudget()), "to make room");
  }

  /** The deployment's isolate if it is running (the warm path, no await). */
  running(config: DeploymentConfig): Isolate | undefined {
    const existing = this.isolates.get(config.id);
    return existing && !existing.dead && !existing.retiring ? existing : undefined;
  }

  // Loads under way: a call that comes while its deployment is being loaded (by another
  // call, or ahead of any) waits for that load rather than starting a second isolate.
  private loading = new Map<string, Promise<Isolate>>();

  get(config: DeploymentConfig): Promise<Isolate> {
    const existing = this.isolates.get(config.id);
    if (existing && !existing.dead) return Promise.resolve(existing);
    let pending = this.loading.get(config.id);
    if (!pending) {
      pending = this.load(config).finally(() => this.loading.delete(config.id));
      this.loading.set(config.id, pending);
    }
    return pending;
  }

  private async load(config: DeploymentConfig): Promise<Isolate> {
    const code = await this.loadCode(config);
    this.makeRoom();
    const channel = await this.takeSpare(config.memoryMb);
    const iso = new Isolate(config, code, channel, this.sandbox, this.lateLog, {
      dead: (gone) => {
        if (this.isolates.get(gone.config.id) === gone) this.isolates.delete(gone.config.id);
        this.draining.delete(gone);
        this.active.delete(gone);
        this.pace();
      },
      busy: (working) => {
        this.active.add(working);
        this.pace();
      },
      held: (message) => this.onHeld(message),
      retire: (old) => {
        if (this.isolates.get(old.config.id) === old) this.isolates.delete(old.config.id);
        this.draining.add(old);
        this.pace();
      },
    });
    this.isolates.set(config.id, iso);
    this.pace();
    return iso;
  }

  get size() {
    return this.isolates.size;
  }

  get readySpares() {
    return this.spares.length;
  }

  // A few isolates are started ahead of need (with the default memory limit), so a cold
  // start skips booting one (35-60 ms): it only loads the deployment's code. The missing ones
  // are started all at once. (They are taken oldest first, so the one a cold call gets has
  // long finished booting.)
  private spares: Channel[] = [];

  private start(memoryMb: number): Channel {
    const channel: Channel = this.sandbox.isolate(memoryMb, (why) => {
      channel.gone = why;
    });
    return channel;
  }

  private async boot(memoryMb: number): Promise<Channel> {
    await this.ready;
    return this.start(memoryMb);
  }

  // Starting an isolate holds this thread for 35-60 ms (Deno makes the worker's runtime
  // before the constructor returns), and every answer of the tenant's calls passes through
  // it: spares are started one at a time, once no spare was taken for a moment, so a call
  // that took one is answered before the next is made.
  private refill: ReturnType<typeof setTimeout> | null = null;

  async warmSpare() {
    await this.ready;
    if (this.spares.length >= this.limits.spares) return;
    this.spares.push(this.start(this.limits.defaultMemoryMb));
    this.refillLater(SPARE_EVERY_MS);
  }

  private refillLater(ms: number) {
    if (this.refill !== null) clearTimeout(this.refill);
    this.refill = setTimeout(() => {
      this.refill = null;
      this.warmSpare();
    }, ms);
  }

  private takeSpare(memoryMb: number): Promise<Channel> {
    let channel: Channel | undefined;
    if (memoryMb === this.limits.defaultMemoryMb) {
      while ((channel = this.spares.shift()) && channel.gone);
    }
    this.refillLater(SPARE_QUIET_MS); // boot the next one after this call is served
    return channel ? Promise.resolve(channel) : this.boot(memoryMb);
  }
}
