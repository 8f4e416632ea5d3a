// Reporting to the control plane, never on an invocation's path: invocation records and
// console lines, and the CPU the tenants' sandboxes used.
//
// Every record and line is written to the journal (journal.ts) before the answer it belongs
// to leaves, and queued here in the journal's order; a batch the control plane acknowledged
// is marked shipped in the journal. A host started in a killed one's place sends the rest.
// Bounded: while the control plane is down (or slower than the calls), newer reports are
// dropped and counted; never an O(n) shift on the request path.
import { newIsolateLinesId } from "./ids.ts";
import type { Entry, Journal } from "./journal.ts";
import type { LogLine } from "./pool.ts";

/** POSTs a JSON body to a control-plane path. */
export type Send = (path: string, body: string) => Promise<Response>;

export type Invocation = {
  requestId: string;
  deploymentId: string;
  function: string;
  trigger: string;
  status: "ok" | "error" | "timeout" | "crashed";
  statusCode: number;
  durationMs: number;
  startedAt: number; // ms since the epoch
  errorMessage: string;
  cold: boolean;
  lines: number;
};

export type ReporterOptions = {
  journal: Journal;
  send: Send;
  maxQueued?: number;
  batchSize?: number;
  batchBytes?: number; // a batch's JSON stays under the control plane's body limit
  coalesceMs?: number; // after the first new report, wait this long to batch its neighbours
  retryMs?: number; // after a failed send, wait this long
  now?: () => number;
  later?: (fn: () => void, ms: number) => void;
  log?: (message: string) => void;
  enabled?: boolean; // benchmarks only: serve without shipping reports
};

export class Reporter {
  readonly queued: Entry[];
  flushing = false;
  droppedLines = 0;
  droppedInvocations = 0;
  private backoffUntil = 0;
  private scheduled = false;
  private isolateLogIds = new Map<string, string>();
  private readonly o: Required<ReporterOptions>;

  constructor(options: ReporterOptions) {
    this.o = {
      maxQueued: 50_000,
      batchSize: 2500,
      // Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default): a batch
      // over it would never land and would hold up every report behind it.
      batchBytes: 1_000_000,
      coalesceMs: 25,
      retryMs: 1_000,
      now: Date.now,
      later: (fn, ms) => void setTimeout(fn, ms),
      log: console.error,
      enabled: true,
      ...options,
    };
    this.queued = this.o.journal.recover();
    if (this.queued.length) this.o.log(`runtime: ${this.queued.length} reports of a previous host to send again`);
  }

  /** A console line; one printed outside any call belongs to its isolate. */
  line(deploymentId: string, requestId: string | null, fn: string, line: LogLine) {
    if (this.queued.length >= this.o.maxQueued) {
      this.droppedLines++;
      return;
    }
    if (!requestId) {
      requestId = this.isolateLogIds.get(deploymentId) ?? newIsolateLinesId();
      this.isolateLogIds.set(deploymentId, requestId);
    }
    this.queued.push(this.o.journal.append("L", JSON.stringify({ ...line, requestId, deploymentId, function: fn })));
    this.schedule();
  }

  /** A call's record: on file before its answer leaves (the journal writes in a microtask
   * queued before the answer's own continuations). */
  invocation(record: Invocation) {
    this.schedule();
    if (this.queued.length >= this.o.maxQueued) this.droppedInvocations++;
    else this.queued.push(this.o.journal.append("I", JSON.stringify(record)));
    this.o.journal.syncSoon();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    this.o.later(() => {
      this.scheduled = false;
      this.flush();
    }, this.o.coalesceMs);
  }

  /** At a stop: what is queued goes out, batch after batch, waiting for a batch already on
   * its way; what cannot be sent within `ms` (or at all) stays in the journal for the next
   * host. */
  async drain(ms = 5_000): Promise<void> {
    const until = Date.now() + ms;
    while ((this.queued.length || this.flushing) && Date.now() < until) {
      if (this.flushing) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      const before = this.queued.length;
      this.backoffUntil = 0;
      await this.flush();
      if (this.queued.length >= before) return; // refused: the journal keeps them
    }
  }

  /** Sends one batch (and goes on while more wait). */
  async flush(): Promise<void> {
    if (!this.o.enabled) {
      this.queued.length = 0;
      return;
    }
    if (this.flushing || this.o.now() < this.backoffUntil || !this.queued.length) return;
    this.flushing = true;
    this.o.journal.sync();
    let take = 0, bytes = 0;
    while (take < this.queued.length && take < this.o.batchSize) {
      bytes += this.queued[take].json.length + 1;
      if (take > 0 && bytes > this.o.batchBytes) break;
      take++;
    }
    const batch = this.queued.splice(0, take);
    // Each entry is JSON already (as journaled): the body is put together, not serialised again.
    const invocations = batch.filter((e) => e.kind === "I").map((e) => e.json);
    const logs = batch.filter((e) => e.kind === "L").map((e) => e.json);
    try {
      const res = await this.o.send(
        "/internal/runtime/ingest",
        `{"invocations":[${invocations.join(",")}],"logs":[${logs.join(",")}]}`,
      );
      await res.body?.cancel();
      if (!res.ok) throw new Error(`ingest answered ${res.status}`);
      this.o.journal.shipped(batch[batch.length - 1].end);
    } catch (err) {
      // Put the batch back in front; ingest is idempotent, so a batch that did land is not
      // doubled when it is sent again.
      this.queued.unshift(...batch);
      this.backoffUntil = this.o.now() + this.o.retryMs;
      this.o.log(`runtime: ingest failed (${(err as Error).message}); ${this.queued.length} reports queued`);
    } finally {
      this.flushing = false;
    }
    if (this.queued.length && this.o.now() >= this.backoffUntil) this.schedule(); // more waiting: go on
    if (this.droppedLines || this.droppedInvocations) {
      this.o.log(
        `runtime: queue full, dropped ${this.droppedLines} log lines and ${this.droppedInvocations} invocation records`,
      );
      this.droppedLines = this.droppedInvocations = 0;
    }
  }
}

/** The CPU the tenants' sandboxes used, charged to them every few seconds, and the tenants
 * refused for their invocations-per-minute quota since the last report (the control plane
 * tells their systems, at most once an hour). A report keeps its id until the control plane
 * has it, so one sent again (its answer lost) counts once. */
export class CpuCharges {
  private used = new Map<number, number>();
  private refused = new Set<number>();
  private ops = new Map<number, [number, number]>(); // key-value reads and writes
  private pending:
    | { id: string; cpu: Record<string, number>; kv: Record<string, [number, number]>; limited: number[] }
    | null = null;

  constructor(private send: Send, private enabled = true) {}

  charge(tenant: number, ms: number) {
    this.used.set(tenant, (this.used.get(tenant) ?? 0) + ms);
  }

  limited(tenant: number) {
    this.refused.add(tenant);
  }

  operations(tenant: number, reads: number, writes: number) {
    const [r, w] = this.ops.get(tenant) ?? [0, 0];
    this.ops.set(tenant, [r + reads, w + writes]);
  }

  async report(): Promise<void> {
    if (!this.enabled) {
      this.refused.clear();
      this.ops.clear();
      return this.used.clear();
    }
    if (!this.pending && (this.used.size || this.refused.size || this.ops.size)) {
      this.pending = {
        id: crypto.randomUUID(),
        cpu: Object.fromEntries(this.used),
        kv: Object.fromEntries(this.ops),
        limited: [...this.refused],
      };
      this.used.clear();
      this.refused.clear();
      this.ops.clear();
    }
    if (!this.pending) return;
    try {
      const res = await this.send("/internal/runtime/usage", JSON.stringify(this.pending));
      await res.body?.cancel();
      if (res.ok || res.status === 400) this.pending = null; // a 400 would not pass later either
    } catch {
      // kept, sent again with the same id
    }
  }
}
