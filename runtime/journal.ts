// What a host has to report (invocation records, console lines) is written to its journal, a
// file, before the call's answer leaves: a host killed right after answering (kill -9, a
// crash) loses nothing it answered. The host that takes its place (same journal: the
// supervisor gives each host number its own) sends again what was not yet acknowledged;
// the control plane's ingest is idempotent, so what arrives twice counts once.
//
// Layout, one entry per line:  I{invocation JSON}  or  L{line JSON}
// Beside it, <journal>.shipped holds how many bytes of the journal the control plane has.
// A host holds an exclusive lock on its journal while it lives: a second host given the same
// journal (its supervisor was killed and a new one started while this host ran on) waits
// until the first has gone, so two hosts never write one journal. The supervisor uses the
// same lock to tell a journal nobody writes from one in use (runtime.py adopts the former).

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const COMPACT_BYTES = 4 * 1024 * 1024; // all shipped and larger than this: start it afresh
const SYNC_WITHIN_MS = 10; // every entry is on file this soon, whether or not an answer waits

export type Entry = { kind: "I" | "L"; json: string; end: number };

export class Journal {
  private file: Deno.FsFile | null = null;
  private size = 0; // bytes written to the file
  private pending: Uint8Array[] = []; // appended, not yet written
  private pendingBytes = 0;
  private shippedTo = 0;
  private syncing = false;
  private later: ReturnType<typeof setTimeout> | null = null;

  constructor(private path: string) {
    if (!path) return; // no journal: reports live in memory only (benchmarks)
    this.file = Deno.openSync(path, { create: true, append: true });
    this.file.lockSync(true); // flock(2): released by the kernel when this process ends
    this.size = this.file.statSync().size;
    this.shippedTo = Math.min(this.readShipped(), this.size);
  }

  /** The entries a previous host wrote and the control plane has not acknowledged. */
  recover(): Entry[] {
    if (!this.file || this.shippedTo >= this.size) return [];
    const bytes = Deno.readFileSync(this.path).subarray(this.shippedTo, this.size);
    const entries: Entry[] = [];
    let offset = this.shippedTo;
    for (const line of decoder.decode(bytes).split("\n")) {
      offset += encoder.encode(line).length + 1;
      const kind = line[0];
      if ((kind === "I" || kind === "L") && wellFormed(line.slice(1))) {
        entries.push({ kind, json: line.slice(1), end: Math.min(offset, this.size) });
      }
    }
    return entries;
  }

  /** Queues an entry for the file; its end offset, for `shipped`. */
  append(kind: "I" | "L", json: string): Entry {
    if (this.file) {
      const bytes = encoder.encode(`${kind}${json}\n`); // once: measured here, written by sync
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      this.syncLater();
    }
    return { kind, json, end: this.size + this.pendingBytes };
  }

  /** Writes what was appended before the answers of this turn leave: in a microtask, queued
   * before the answer's own continuations, so calls that end together share one write. */
  syncSoon() {
    if (this.syncing) return;
    this.syncing = true;
    queueMicrotask(() => {
      this.syncing = false;
      this.sync();
    });
  }

  /** Writes what was appended within SYNC_WITHIN_MS, for entries no answer waits on (a line
   * printed outside any call): one timer while some wait, so an idle host wakes for nothing;
   * an answer's syncSoon usually writes them first. */
  private syncLater() {
    if (this.later !== null) return;
    this.later = setTimeout(() => {
      this.later = null;
      this.sync();
    }, SYNC_WITHIN_MS);
  }

  /** Writes what was appended (one write). */
  sync() {
    if (!this.pending.length || !this.file) return;
    const bytes = new Uint8Array(this.pendingBytes);
    let at = 0;
    for (const part of this.pending) {
      bytes.set(part, at);
      at += part.length;
    }
    this.pending = [];
    this.pendingBytes = 0;
    let written = 0;
    while (written < bytes.length) written += this.file.writeSync(bytes.subarray(written));
    this.size += bytes.length;
  }

  /** The control plane has everything up to `end`. */
  shipped(end: number) {
    if (!this.file || end <= this.shippedTo) return;
    this.shippedTo = end;
    if (this.shippedTo >= this.size && !this.pending.length && this.size > COMPACT_BYTES) {
      this.file.truncateSync(0); // appends go on at the new end
      this.size = this.shippedTo = 0;
    }
    Deno.writeTextFileSync(`${this.path}.shipped`, String(this.shippedTo));
  }

  /** Closes the file, its lock with it (as a host's end does). */
  close() {
    if (this.later !== null) clearTimeout(this.later);
    this.later = null;
    this.file?.close();
    this.file = null;
  }

  private readShipped(): number {
    try {
      return Number(Deno.readTextFileSync(`${this.path}.shipped`)) || 0;
    } catch {
      return 0;
    }
  }
}

/** Whether a journaled entry is whole: a host killed in the middle of a write leaves a torn
 * last line, which would make every batch it is in fail. */
function wellFormed(json: string): boolean {
  try {
    JSON.parse(json);
    return true;
  } catch {
    return false;
  }
}
