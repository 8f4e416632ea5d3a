// One Web Worker (isolate) per deployment, created on first call. A call that runs past
// its timeout terminates that isolate (the only way to stop a busy loop); the next call
// gets a fresh one, and other deployments are never touched.

export type LogLine = { seq: number; level: string; message: string; timestamp: string };

export type Outcome = {
  status: number;
  code?: string;
  json?: string; // the result, already JSON
  error?: { name: string; message: string; stack: string };
  logs: LogLine[];
};

export type DeploymentConfig = {
  id: string;
  tenant: number;
  public: boolean;
  host: string;
  functions: string[];
  artifact: string;
  timeoutMs: number;
  maxBodyBytes: number;
  invocationsPerMinute: number;
  maxLogLines: number;
  maxLineBytes: number;
  maxConcurrency: number;
  maxResultBytes: number;
  env: Record<string, string>;
};

type Pending = {
  logs: LogLine[];
  resolve: (o: Outcome) => void;
  timer: ReturnType<typeof setTimeout>;
};

export type LateLog = (
  deploymentId: string,
  requestId: string | null,
  fn: string,
  line: LogLine,
) => void;

const BOOTSTRAP = new URL("./isolate.js", import.meta.url);
let bootstrapUrl: string | null = null;

async function bootstrap(): Promise<string> {
  if (!bootstrapUrl) {
    const text = await Deno.readTextFile(BOOTSTRAP);
    bootstrapUrl = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
  }
  return bootstrapUrl;
}

export class Isolate {
  private pending = new Map<string, Pending>();
  private worker: Worker;
  dead = false;
  lastUsed = Date.now();

  constructor(
    readonly config: DeploymentConfig,
    code: string,
    worker: Worker,
    private lateLog: LateLog,
    private onDead: (iso: Isolate) => void,
  ) {
    this.worker = worker;
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.kill(500, "isolate_crashed", `The isolate crashed: ${e.message}`);
    };
    const limits = { maxLines: config.maxLogLines, maxLineBytes: config.maxLineBytes };
    this.worker.postMessage({ t: "init", code, limits, env: config.env ?? {} });
  }

  call(requestId: string, fn: string, payload: unknown, timeoutMs: number): Promise<Outcome> {
    this.lastUsed = Date.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const call = this.pending.get(requestId);
        if (!call) return;
        this.pending.delete(requestId);
        call.resolve({
          status: 504,
          code: "timeout",
          error: {
            name: "TimeoutError",
            message: `The function did not finish within ${timeoutMs} ms and was stopped.`,
            stack: "",
          },
          logs: call.logs,
        });
        this.kill(503, "isolate_restarted",
          "Another call to this deployment timed out and its isolate was restarted; retry.");
      }, timeoutMs);
      this.pending.set(requestId, { logs: [], resolve, timer });
      this.worker.postMessage({ t: "call", id: requestId, fn, payload });
    });
  }

  private receive(msg: any) {
    if (msg.t === "log") {
      const line = { seq: msg.seq, level: msg.level, message: msg.message, timestamp: new Date(msg.ts).toISOString() };
      const call = msg.id ? this.pending.get(msg.id) : undefined;
      if (call) call.logs.push(line);
      // Every line also goes to the control plane as it is printed (the live tail), including
      // lines printed after a call answered (a timer it left behind) or outside any call.
      this.lateLog(this.config.id, msg.id, msg.fn ?? "", line);
      return;
    }
    if (msg.t !== "done") return;
    const call = this.pending.get(msg.id);
    if (!call) return;
    this.pending.delete(msg.id);
    clearTimeout(call.timer);
    if (msg.ok && msg.json.length > this.config.maxResultBytes) {
      // Length in UTF-16 units: a cheap lower bound of the UTF-8 size, enough for a cap.
      call.resolve({
        status: 500,
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
      const status = msg.code === "function_not_found" ? 404 : 500;
      call.resolve({ status, code: msg.code, error: msg.error, logs: call.logs });
    }
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  kill(status: number, code: string, message: string) {
    if (this.dead) return;
    this.dead = true;
    this.worker.terminate();
    for (const [id, call] of this.pending) {
      clearTimeout(call.timer);
      call.resolve({ status, code, error: { name: "Error", message, stack: "" }, logs: call.logs });
      this.pending.delete(id);
    }
    this.onDead(this);
  }
}

export class Pool {
  private isolates = new Map<string, Isolate>();

  constructor(
    private loadCode: (config: DeploymentConfig) => Promise<string>,
    private lateLog: LateLog,
    private limits: { idleMs: number; maxIsolates: number },
  ) {
    setInterval(() => this.evictIdle(), Math.min(10_000, limits.idleMs));
  }

  /** Stops isolates nobody called for a while; a later call starts a fresh one (cold). */
  evictIdle() {
    const cutoff = Date.now() - this.limits.idleMs;
    for (const iso of [...this.isolates.values()]) {
      if (!iso.busy && iso.lastUsed < cutoff) iso.kill(503, "evicted", "The isolate was idle and stopped.");
    }
  }

  /** Makes room for one more isolate by stopping the least recently used idle ones. */
  private makeRoom() {
    const idle = [...this.isolates.values()].filter((iso) => !iso.busy).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.isolates.size >= this.limits.maxIsolates && idle.length) {
      idle.shift()!.kill(503, "evicted", "The isolate was stopped to make room.");
    }
  }

  async get(config: DeploymentConfig): Promise<Isolate> {
    const existing = this.isolates.get(config.id);
    if (existing && !existing.dead) return existing;
    const code = await this.loadCode(config);
    const again = this.isolates.get(config.id); // another request may have won the race
    if (again && !again.dead) return again;
    this.makeRoom();
    const iso = new Isolate(config, code, await this.takeSpare(), this.lateLog, (dead) => {
      if (this.isolates.get(dead.config.id) === dead) this.isolates.delete(dead.config.id);
    });
    this.isolates.set(config.id, iso);
    return iso;
  }

  get size() {
    return this.isolates.size;
  }

  // One Web Worker is booted ahead of need, so a cold start skips the ~20 ms a Worker takes
  // to boot: it only loads the deployment's code. Spares have no permissions, like all.
  private spare: Promise<Worker> | null = null;

  private static async boot(): Promise<Worker> {
    return new Worker(await bootstrap(), { type: "module", deno: { permissions: "none" } } as WorkerOptions);
  }

  warmSpare() {
    this.spare ??= Pool.boot();
  }

  private takeSpare(): Promise<Worker> {
    const worker = this.spare ?? Pool.boot();
    this.spare = null;
    setTimeout(() => this.warmSpare(), 0); // boot the next one after this call is served
    return worker;
  }
}
