// The host's side of the process boundary: one sandbox process (cell.ts) per tenant with calls
// in flight or recently served, started confined by the operating system (confine.py), and
// killed when it must be:
//   * a thread in it could not be stopped (it says "stuck", then exits);
//   * it went over the tenant's memory (the kernel's cgroup stops it at its limit; without
//     cgroups, its resident memory is watched here);
//   * it burns CPU with no call in flight (a worker it started, a timer in a loop);
//   * it stops answering.
// A tenant whose sandbox keeps being stopped waits before it gets a new one (its calls are
// answered 503 with Retry-After meanwhile): starting a sandbox costs a core for a third of a
// second, so restarts without a pause would let one tenant spend the machine's CPU outside
// its own limits.
// Its calls in flight then end with a retryable error that names the cause; what it already
// answered and printed is here, in the host, and is reported as usual. The CPU it used is
// charged to its tenant.
import { type ErrorCode, statusOf } from "./contract.ts";
import type { FetchAnswer, FetchRequest } from "./egress.ts";
import type { DeploymentConfig, HttpRequest, LateLog, LogLine, Outcome, Pin } from "./pool.ts";
import { fromBase64, listenForSandbox, type Message, readMessages, toBase64, Writer } from "./wire.ts";

export type Answer = Outcome & { cold: boolean };

export type CellOptions = {
  command: string[]; // the confine wrapper, then deno running cell.ts; "{name}" is the cell's
  env: Record<string, string>;
  maxCells: number;
  spares: number; // cells started ahead of need, given to the next tenant that needs one
  memoryBytes: number; // one tenant's sandbox: all its deployments, every kind of memory
  idleMs: number;
  cgroups: boolean; // whether confine.py makes cgroups for them here
  loadCode: (artifact: string) => Promise<string>;
  lateLog: LateLog;
  internal: (req: FetchRequest, pin: Pin | undefined) => Promise<FetchAnswer> | null;
  charge: (tenant: number, cpuMs: number) => void;
  /** A deployment's ctx.kv or ctx.enqueue, asked of the control plane. */
  bind: (
    deployment: string,
    path: typeof BOUND_PATHS[number],
    req: unknown,
  ) => Promise<{ status: number; body: unknown }>;
  /** Key-value operations a tenant's code made (cached reads too), for its usage. */
  operations: (tenant: number, reads: number, writes: number) => void;
};

// What a sandbox may ask of the control plane for its deployments' code (Cell's "bind").
const BOUND_PATHS = ["kv", "enqueue", "steps", "events"] as const;

type Pending = {
  deployment: string;
  logs: LogLine[]; // its console lines so far, for its answer
  resolve: (answer: Answer) => void;
  deadline: number;
  body?: ReadableStreamDefaultController<Uint8Array>;
  answered?: boolean;
};

const WATCH_MS = 500;
const LATE_MS = 5_000; // past a call's deadline, a sandbox that has not answered is stopped
const PRELOAD_WAIT_MS = 5_000; // the control plane stops waiting long before
const BURN_SECONDS = 3; // seconds of busy CPU with no call in flight before it is stopped
const FREE_RESTARTS = 3; // stops in a row started again at once; then 1 s, 2 s, 4 s ... 30 s
const MAX_PAUSE_MS = 30_000;
const FORGIVEN_MS = 60_000; // a sandbox that lasted this long wipes the slate
// What a sandbox writes to its stderr reaches the host's, at most this much.
const STDERR_LINES = 20; // in each window
const STDERR_WINDOW_MS = 10_000;
const STDERR_LINE_CHARS = 2_000;

/** A tenant's sandbox was stopped too often lately: no new one before `retryAfterMs`. */
export class Cooling extends Error {
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
  }
}

type Strikes = { count: number; last: number; why: string };

let cellNumber = 0;

export class Cell {
  readonly name = `cell-${Deno.pid}-${++cellNumber}-${crypto.randomUUID().slice(0, 8)}`;
  tenant: number | null = null;
  dead = false;
  stopping = false; // told to stop or about to: no new calls
  struck = false; // counted against its tenant (Cells.strike)
  lastUsed = Date.now();
  private proc: Deno.ChildProcess;
  private out: Writer;
  private pending = new Map<string, Pending>();
  private sent = new Map<string, DeploymentConfig>(); // the config it has of each deployment
  private calls = new Map<string, number>(); // calls in flight per deployment
  private stats = new Map<number, (s: { isolates: number; spares: number }) => void>();
  private preloads = new Map<string, (() => void)[]>(); // waiting for a deployment to load
  private nextStats = 1;
  why: { code: ErrorCode; message: string } | null = null;
  private cpuMs = 0; // as it last said: all its threads' CPU time
  private charged = 0; // of which charged to its tenant
  private rss = 0;
  private burning = 0;

  constructor(private options: CellOptions, private onExit: (cell: Cell) => void) {
    const [program, ...args] = options.command.map((part) => part.replaceAll("{name}", this.name));
    // The channel is a Unix socket (wire.ts), not the sandbox's stdin and stdout: Deno reads
    // and writes those on its blocking thread pool, two more threads to wake for every
    // message: with one call at a time, a fifth to a quarter of a sandbox's CPU per call
    // (docs/benchmarks.md).
    const channel = listenForSandbox();
    this.proc = new Deno.Command(program, {
      args,
      env: { ...options.env, RUNTIME_CHANNEL: channel.spec },
      clearEnv: true,
      // Tenant code may write to the process's stdout and stderr (no permission is needed):
      // neither is the channel, stdout goes nowhere, and stderr only through a bound.
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    relayStderr(this.proc.stderr, () => this.tenant === null ? "a spare sandbox" : `tenant ${this.tenant}'s sandbox`)
      .catch(() => {});
    this.out = new Writer(channel.connected.then((conn) => conn.writable.getWriter()), () => this.pending.size > 1);
    channel.connected.then((conn) => readMessages(conn.readable, (m) => this.receive(m))).catch(() => {});
    this.proc.status.then((status) => {
      channel.close(); // if it never connected, nothing waits on the name any more
      channel.connected.then((conn) => conn.close()).catch(() => {});
      this.ended(status);
    });
  }

  get pid() {
    return this.proc.pid;
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  inFlight(deployment: string): number {
    return this.calls.get(deployment) ?? 0;
  }

  call(
    config: DeploymentConfig,
    requestId: string,
    fn: string,
    payload: unknown,
    http?: HttpRequest,
    pin?: Pin,
  ): Promise<Answer> {
    this.lastUsed = Date.now();
    if (this.dead) return Promise.resolve(this.failure(this.why));
    this.tell(config);
    this.calls.set(config.id, this.inFlight(config.id) + 1);
    return new Promise((resolve) => {
      this.pending.set(requestId, {
        deployment: config.id,
        logs: [],
        resolve,
        deadline: performance.now() + config.timeoutMs + LATE_MS,
      });
      const wire = http ? { ...http, body: http.body ? toBase64(new Uint8Array(http.body)) : null } : undefined;
      this.out.send({
        t: "call",
        id: requestId,
        d: config.id,
        fn,
        payload,
        timeoutMs: config.timeoutMs,
        http: wire,
        pin,
      });
    });
  }

  /** The deployment's configuration, once per version of it. */
  private tell(config: DeploymentConfig) {
    if (this.sent.get(config.id) !== config) {
      this.sent.set(config.id, config);
      this.out.send({ t: "config", config });
    }
  }

  /** Loads the deployment into an isolate ahead of its first call (announced as new);
   * resolves once it is loaded, or could not be (its first call will say why), or after
   * PRELOAD_WAIT_MS. */
  preload(config: DeploymentConfig): Promise<void> {
    if (this.dead || this.stopping) return Promise.resolve();
    this.tell(config);
    this.out.send({ t: "preload", d: config.id });
    return new Promise((resolve) => {
      const timer = setTimeout(done, PRELOAD_WAIT_MS);
      const waiting = this.preloads.get(config.id);
      if (waiting) waiting.push(done);
      else this.preloads.set(config.id, [done]);
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** How many isolates it runs and has ready, as it says itself. */
  count(): Promise<{ isolates: number; spares: number }> {
    if (this.dead) return Promise.resolve({ isolates: 0, spares: 0 });
    const n = this.nextStats++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.stats.delete(n), resolve({ isolates: 0, spares: 0 })), 1_000);
      this.stats.set(n, (s) => (clearTimeout(timer), resolve(s)));
      this.out.send({ t: "stats?", n });
    });
  }

  private answered(id: string, pending: Pending) {
    pending.answered = true;
    const left = this.inFlight(pending.deployment) - 1;
    if (left > 0) this.calls.set(pending.deployment, left);
    else this.calls.delete(pending.deployment);
    this.lastUsed = Date.now();
    if (!pending.body) this.pending.delete(id);
  }

  private receive(msg: Message) {
    switch (msg.t) {
      case "done": {
        const pending = this.pending.get(msg.id as string);
        if (!pending || pending.answered) return;
        this.answered(msg.id as string, pending);
        pending.resolve({ ...(msg.outcome as Outcome), logs: pending.logs, cold: msg.cold as boolean });
        return;
      }
      case "head": {
        const id = msg.id as string;
        const pending = this.pending.get(id);
        if (!pending || pending.answered) return;
        const body = msg.hasBody
          ? new ReadableStream<Uint8Array>({
            start: (controller) => void (pending.body = controller),
            cancel: () => {
              this.pending.delete(id);
              this.out.send({ t: "cancel", id });
            },
          })
          : null;
        this.answered(id, pending);
        const response = {
          status: msg.status as number,
          statusText: msg.statusText as string,
          headers: msg.headers as [string, string][],
          body,
        };
        pending.resolve({ ...(msg.outcome as Outcome), logs: pending.logs, response, cold: msg.cold as boolean });
        return;
      }
      case "chunk":
        this.pending.get(msg.id as string)?.body?.enqueue(fromBase64(msg.b as string));
        return;
      case "end":
      case "fail": {
        const pending = this.pending.get(msg.id as string);
        this.pending.delete(msg.id as string);
        try {
          if (msg.t === "end") pending?.body?.close();
          else pending?.body?.error(new Error(msg.message as string));
        } catch {
          // the caller cancelled it
        }
        return;
      }
      case "lines":
        for (const [deployment, request, fn, line] of msg.list as [string, string | null, string, LogLine][]) {
          // Only into the logs of a deployment this host gave the sandbox, as for "bind".
          if (!this.sent.has(deployment)) continue;
          this.options.lateLog(deployment, request, fn, line);
          const pending = request ? this.pending.get(request) : undefined;
          if (pending && !pending.answered) pending.logs.push(line);
        }
        return;
      case "code?": {
        const artifact = msg.artifact as string;
        this.options.loadCode(artifact).then(
          (code) => this.out.send({ t: "code", artifact, code }),
          (err) => this.out.send({ t: "code", artifact, error: (err as Error).message }),
        );
        return;
      }
      case "ifetch": {
        const req = msg.req as FetchRequest & { body: string | null };
        const request = { ...req, body: req.body === null ? null : fromBase64(req.body).buffer as ArrayBuffer };
        const served = this.options.internal(request, msg.pin as Pin | undefined) ??
          Promise.resolve({ ok: false, error: "Not one of the platform's workers." } as FetchAnswer);
        served.then((answer) => {
          const wire = answer.ok ? { ...answer, body: toBase64(new Uint8Array(answer.body)) } : answer;
          this.out.send({ t: "ifetched", n: msg.n, answer: wire });
        });
        return;
      }
      case "usage": {
        this.cpuMs = msg.cpuMs as number;
        this.rss = msg.rss as number;
        const [reads, writes] = (msg.kv ?? [0, 0]) as [number, number];
        if (this.tenant !== null && reads + writes > 0) this.options.operations(this.tenant, reads, writes);
        return;
      }
      case "bind": {
        // Only for a deployment this host gave the sandbox: whatever runs in there cannot
        // reach another tenant's bindings by naming its deployment.
        const path = BOUND_PATHS.find((p) => p === msg.path);
        const answer = path && this.sent.has(msg.d as string)
          ? this.options.bind(msg.d as string, path, msg.req)
          : Promise.resolve({
            status: 404,
            body: { error: { code: "not_found", message: "No such deployment or binding." } },
          });
        answer.then(({ status, body }) => this.out.send({ t: "bound", n: msg.n, status, body }));
        return;
      }
      case "preloaded":
        for (const done of this.preloads.get(msg.d as string) ?? []) done();
        this.preloads.delete(msg.d as string);
        return;
      case "stats":
        this.stats.get(msg.n as number)?.({ isolates: msg.isolates as number, spares: msg.spares as number });
        this.stats.delete(msg.n as number);
        return;
      case "stuck":
        this.stopping = true;
        this.why = {
          code: "isolate_restarted",
          message:
            "Another call of this tenant held its thread past its limit, so the tenant's sandbox was restarted; retry.",
        };
        console.error(`runtime: tenant ${this.tenant}'s sandbox is stopping: ${msg.message}`);
        return;
    }
  }

  /** Stops the process and everything it started, for `code`; its calls get `message`. */
  kill(code: ErrorCode, message: string) {
    if (this.dead) return;
    this.stopping = true;
    this.why ??= { code, message };
    try {
      Deno.kill(-this.proc.pid, "SIGKILL"); // its process group: the sandbox and anything it started
    } catch {
      try {
        this.proc.kill("SIGKILL");
      } catch {
        // gone already
      }
    }
  }

  /** Looks at its memory and CPU (called every WATCH_MS by the pool of cells). */
  watch(now: number) {
    if (this.dead) return;
    for (const pending of this.pending.values()) {
      if (!pending.answered && now > pending.deadline) {
        this.kill("isolate_restarted", "This tenant's sandbox stopped answering and was restarted; retry.");
        return;
      }
    }
    // Where the kernel cannot stop it at its memory (no cgroups), this does, a little later.
    if (this.rss > this.options.memoryBytes) {
      this.kill("memory_limit_exceeded", this.overMemory());
      return;
    }
    const used = this.cpuMs - this.charged;
    this.charged = this.cpuMs;
    if (this.tenant !== null && used > 0) this.options.charge(this.tenant, used);
    // Busy most of the time with nothing in flight: something of the tenant's runs on its own.
    this.burning = !this.busy && used > WATCH_MS * 0.8 ? this.burning + 1 : 0;
    if (this.burning * WATCH_MS >= BURN_SECONDS * 1000) {
      console.error(
        `runtime: tenant ${this.tenant}'s sandbox used a core for ${BURN_SECONDS} s with no call in flight; stopped`,
      );
      this.kill(
        "isolate_restarted",
        "This tenant's sandbox kept a core busy with no call in flight and was restarted; retry.",
      );
    }
  }

  private overMemory(): string {
    const mb = Math.round(this.options.memoryBytes / 1048576);
    return `Memory limit exceeded: this tenant's sandbox (all its deployments, every kind of memory: heap, buffers, Blobs, WebAssembly, workers) held more than ${mb} MB and was restarted.`;
  }

  private failure(why: { code: ErrorCode; message: string } | null): Answer {
    const { code, message } = why ??
      { code: "isolate_crashed" as ErrorCode, message: "The tenant's sandbox stopped unexpectedly; retry." };
    return { status: statusOf(code), code, error: { name: "Error", message, stack: "" }, logs: [], cold: false };
  }

  private async ended(status: Deno.CommandStatus) {
    this.dead = true;
    this.out.closed = true;
    for (const waiting of this.preloads.values()) waiting.forEach((done) => done());
    this.preloads.clear();
    const report = await this.report();
    if (!this.why && report.memory) this.why = { code: "memory_limit_exceeded", message: this.overMemory() };
    if (!this.why) {
      this.why = {
        code: "isolate_crashed",
        message: `This tenant's sandbox stopped unexpectedly (${status.signal ?? `exit code ${status.code}`}); retry.`,
      };
    }
    if (this.why.code !== "evicted") {
      console.error(`runtime: tenant ${this.tenant}'s sandbox ended: ${this.why.message}`);
    }
    const answer = this.failure(this.why);
    for (const pending of this.pending.values()) {
      if (pending.answered) pending.body?.error(new Error(answer.error!.message));
      else pending.resolve({ ...answer, logs: pending.logs }); // what it printed before
    }
    this.pending.clear();
    this.calls.clear();
    for (const resolve of this.stats.values()) resolve({ isolates: 0, spares: 0 });
    this.stats.clear();
    this.onExit(this);
  }

  /** Whether the kernel stopped it at its cgroup's memory limit; the cgroup is removed. */
  private async report(): Promise<{ memory: boolean }> {
    if (!this.options.cgroups) return { memory: false };
    const [program, ...args] = this.options.command;
    const wrapper = args.slice(0, args.indexOf("--create"));
    try {
      const done = await new Deno.Command(program, { args: [...wrapper, "--ended", this.name], stderr: "inherit" })
        .output();
      return JSON.parse(new TextDecoder().decode(done.stdout));
    } catch (err) {
      console.error(`runtime: could not ask about the sandbox's cgroup: ${(err as Error).message}`);
      return { memory: false };
    }
  }
}

/** A sandbox's stderr, its own diagnostics (a thread that failed, an uncaught error), to the
 * host's, one line at a time with who wrote it. Its tenant's code can write there too, so at
 * most STDERR_LINES lines of STDERR_LINE_CHARS in each STDERR_WINDOW_MS. Past that the host
 * stops reading until the window ends: the pipe fills and the writer waits, so a sandbox that
 * floods its stderr fills no operator's disk and costs the host nothing more. */
async function relayStderr(stream: ReadableStream<Uint8Array>, who: () => string) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let shown = 0;
  let windowEnds = performance.now() + STDERR_WINDOW_MS;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0 || buffer.length > STDERR_LINE_CHARS) {
      const whole = end >= 0 && end <= STDERR_LINE_CHARS; // else cut at the longest a line may be
      const line = buffer.slice(0, whole ? end : STDERR_LINE_CHARS);
      buffer = buffer.slice(whole ? end + 1 : STDERR_LINE_CHARS);
      if (shown < STDERR_LINES) console.error(`runtime: ${who()}: ${line}`);
      else if (shown === STDERR_LINES) {
        console.error(
          `runtime: ${who()} writes more than ${STDERR_LINES} lines to its stderr in ${STDERR_WINDOW_MS / 1000} s: ` +
            "the rest of them are dropped until that time is over.",
        );
      }
      shown++;
    }
    const left = windowEnds - performance.now();
    if (shown > STDERR_LINES && left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    if (performance.now() >= windowEnds) {
      shown = 0;
      windowEnds = performance.now() + STDERR_WINDOW_MS;
    }
  }
}

/** The host's sandboxes: which tenant has which, spares, a bound on how many. */
export class Cells {
  private byTenant = new Map<number, Cell>();
  private spares: Cell[] = [];
  private strikes = new Map<number, Strikes>(); // tenants whose sandboxes were stopped lately

  constructor(private options: CellOptions) {
    setInterval(() => {
      const now = performance.now();
      for (const cell of this.byTenant.values()) cell.watch(now);
      this.stopIdle();
    }, WATCH_MS);
  }

  private spawn(): Cell {
    return new Cell(this.options, (gone) => {
      if (gone.tenant !== null && this.byTenant.get(gone.tenant) === gone) this.byTenant.delete(gone.tenant);
      this.strike(gone);
      this.spares = this.spares.filter((cell) => cell !== gone);
    });
  }

  warm() {
    while (this.spares.length < this.options.spares) this.spares.push(this.spawn());
  }

  /** The tenant's sandbox if it runs and takes calls. */
  private running(tenant: number): Cell | undefined {
    const cell = this.byTenant.get(tenant);
    if (cell && !cell.dead && !cell.stopping) return cell;
    if (cell) this.strike(cell); // before its process has ended: its replacement may wait
    return undefined;
  }

  /** A deployment about to be ready, announced as new or newly production: loaded ahead in
   * its tenant's sandbox if that runs here (no sandbox is started for it); resolves once it
   * is loaded. */
  preload(config: DeploymentConfig): Promise<void> {
    return this.byTenant.get(config.tenant)?.preload(config) ?? Promise.resolve();
  }

  /** Whether the tenant's sandbox runs here and takes calls. */
  runs(tenant: number): boolean {
    return this.running(tenant) !== undefined;
  }

  /** Counts a sandbox stopped by what its tenant did (not to make room or for idleness). */
  private strike(cell: Cell) {
    if (cell.struck || cell.tenant === null || cell.why?.code === "evicted") return;
    cell.struck = true;
    const tenant = cell.tenant;
    const why = cell.why?.message ?? "it stopped unexpectedly.";
    const now = Date.now();
    const seen = this.strikes.get(tenant);
    const count = seen && now - seen.last < FORGIVEN_MS ? seen.count + 1 : 1;
    this.strikes.set(tenant, { count, last: now, why: why.replace(/[;,]? ?retry\.$/, ".") });
    if (this.strikes.size > 10_000) this.strikes.delete(this.strikes.keys().next().value!);
  }

  /** Throws Cooling while the tenant must wait for a new sandbox. */
  private mayStart(tenant: number) {
    const seen = this.strikes.get(tenant);
    if (!seen || seen.count <= FREE_RESTARTS) return;
    const pause = Math.min(MAX_PAUSE_MS, 1000 * 2 ** (seen.count - FREE_RESTARTS - 1));
    const left = seen.last + pause - Date.now();
    if (left <= 0) return;
    throw new Cooling(
      `This tenant's sandbox was stopped ${seen.count} times in a row, last: ${seen.why} ` +
        `A new one starts in ${Math.ceil(left / 1000)} s; retry then.`,
      left,
    );
  }

  get(tenant: number): Cell {
    const running = this.running(tenant);
    if (running) return running;
    this.mayStart(tenant);
    this.makeRoom();
    let cell: Cell | undefined;
    while ((cell = this.spares.shift()) && cell.dead);
    cell ??= this.spawn();
    cell.tenant = tenant;
    this.byTenant.set(tenant, cell);
    setTimeout(() => this.warm(), 0);
    return cell;
  }

  private makeRoom() {
    const over = this.byTenant.size + 1 - this.options.maxCells;
    if (over <= 0) return;
    const idle = [...this.byTenant.values()].filter((c) => !c.busy).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const cell of idle.slice(0, over)) cell.kill("evicted", "The tenant's sandbox was stopped to make room.");
  }

  private stopIdle() {
    const cutoff = Date.now() - this.options.idleMs;
    for (const cell of this.byTenant.values()) {
      if (!cell.busy && cell.lastUsed < cutoff) cell.kill("evicted", "The tenant's sandbox was idle and stopped.");
    }
  }

  get size() {
    return this.byTenant.size;
  }

  async counts(): Promise<{ cells: number; isolates: number; spares: number }> {
    const all = await Promise.all([...this.byTenant.values()].map((cell) => cell.count()));
    return {
      cells: this.byTenant.size,
      isolates: all.reduce((n, s) => n + s.isolates, 0),
      spares: all.reduce((n, s) => n + s.spares, 0),
    };
  }

  stopAll() {
    for (const cell of [...this.byTenant.values(), ...this.spares]) {
      cell.kill("evicted", "The runtime host is stopping.");
    }
  }
}
