// What a host has to report (invocation records, console lines) is written to its journal, a
// file, before the call's answer leaves: a host killed right after answering (kill -9, a
// crash) loses nothing it answered. The host that takes its place (same journal: the
// supervisor gives each host number its own) sends again what was not yet acknowledged;
// the control plane's ingest is idempotent, so what arrives twice counts once.
//
// Layout, one entry per line:  I{invocation JSON}  or  L{line JSON}
// Beside it, <journal>.shipped holds how many bytes of the journal the control plane has; a
// figure past the file's end means all of it is still to send (a compaction was cut short:
// `compact` below).
// A host holds an exclusive lock on its journal while it lives: a second host given the same
// journal (its supervisor was killed and a new one started while this host ran on) waits
// until the first has gone, so two hosts never write one journal. The supervisor uses the
// same lock to tell a journal nobody writes from one in use (runtime.py adopts the former).

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const COMPACT_BYTES = 4 * 1024 * 1024; // this much shipped: the unshipped rest moves to the start
const SYNC_WITHIN_MS = 10; // every entry is on file this soon, whether or not an answer waits

export type Entry = { kind: "I" | "L"; json: string; end: number };

export class Journal {
  private file: Deno.FsFile | null = null;
  // Offsets (an entry's `end`, `size`, `shippedTo`) count every byte this host wrote; the
  // file holds those from `base` on (what compactions removed from its start comes before).
  private base = 0;
  private size = 0; // bytes written to the file
  private pending: Uint8Array[] = []; // appended, not yet written
  private pendingBytes = 0;
  private shippedTo = 0;
  private syncing = false;
  private later: ReturnType<typeof setTimeout> | null = null;
  private writable = true; // false once a write failed (`setAside`)

  constructor(private path: string, private log: (message: string) => void = console.error) {
    if (!path) return; // no journal: reports live in memory only (benchmarks)
    this.file = Deno.openSync(path, { create: true, append: true });
    this.file.lockSync(true); // flock(2): released by the kernel when this process ends
    this.size = this.file.statSync().size;
    const shipped = this.readShipped();
    this.shippedTo = shipped > this.size ? 0 : shipped;
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
    if (this.file && this.writable) {
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
    try {
      let written = 0;
      while (written < bytes.length) written += this.file.writeSync(bytes.subarray(written));
    } catch (err) {
      return this.setAside(err);
    }
    this.size += bytes.length;
  }

  /** A write failed (a full disk, say). Thrown on, it would end the host and every host
   * started after it at their first call; instead the host goes on serving without its
   * journal until it ends, and says so once. The reporter still has every report in memory
   * and sends them; what is lost is only their surviving a kill of this host. The lock is
   * kept: no supervisor takes over a journal its host still holds. What is on file and not
   * acknowledged goes out again from the next host (counted once). */
  private setAside(err: unknown) {
    if (!this.writable) return;
    this.writable = false;
    this.pending = [];
    this.pendingBytes = 0;
    this.log(
      `runtime: the journal ${this.path} cannot be written (${(err as Error).message}); ` +
        "this host's reports are kept in memory only, and lost if it is killed, until the " +
        "runtime is restarted with the journal writable again (RUNTIME_JOURNAL_DIR)",
    );
  }

  /** The control plane has everything up to `end`. */
  shipped(end: number) {
    if (!this.file || !this.writable || end <= this.shippedTo) return;
    this.shippedTo = end;
    try {
      this.mark();
      if (this.compact()) this.mark();
    } catch (err) {
      this.setAside(err);
    }
  }

  private mark() {
    Deno.writeTextFileSync(`${this.path}.shipped`, String(this.shippedTo - this.base));
  }

  /** Keeps the file small while calls never stop: then the control plane's acknowledgements
   * never reach its end, and it grew by every report the host made (140 MB in 33 s under
   * load). Once COMPACT_BYTES are shipped, the unshipped rest, if shorter, is copied to the
   * start and the file cut after it; in place, so the lock stays on this file. The mark on
   * file is `shipped` already (written just before), so a host killed midway leaves either
   * the rest intact where it was (copied over shipped bytes only) with the mark pointing at
   * it, or a file cut shorter than the mark, which the next host reads as all unsent.
   * Pending entries are written after, at the new end. True when it compacted. */
  private compact(): boolean {
    const shipped = this.shippedTo - this.base; // in the file
    const rest = this.size - this.shippedTo;
    if (!this.file || shipped < COMPACT_BYTES || rest >= shipped) return false;
    if (rest > 0) {
      const bytes = Deno.readFileSync(this.path).subarray(shipped, shipped + rest); // (as recover)
      using writer = Deno.openSync(this.path, { write: true }); // (the host's own appends)
      for (let at = 0; at < rest;) at += writer.writeSync(bytes.subarray(at));
    }
    this.file.truncateSync(rest);
    this.base = this.shippedTo;
    return true;
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
