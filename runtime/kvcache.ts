// What a tenant's sandbox process (cell.ts) remembers of the key-value entries its code read
// or wrote, so a hot key does not go to the control plane on every read.
//
// * A read answered from here is at most `ttlMs` old: a write made through another host (or
//   the API, or the portal) is seen here within that time. Writes made through this process
//   are seen by its next read at once (read-your-own-writes on this host).
// * An absent key is remembered too (a miss costs the same as a hit).
// * Bounded by bytes (values and keys): the least recently used entries go first. The cache
//   lives in the tenant's own sandbox process, so its memory is counted in the tenant's.
// * Never a compare-and-set: a write with ifVersion always goes to the control plane, which
//   says whether the version held.

export type Entry = {
  found: boolean;
  value?: Uint8Array;
  metadata?: unknown;
  version?: number;
  expiresAt?: number | null; // ms since the epoch
};

type Held = { entry: Entry; until: number; size: number };

export class KvCache {
  private held = new Map<string, Held>(); // in the order of their last use
  private bytes = 0;

  constructor(
    private ttlMs: number,
    private maxBytes: number,
    private now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** The entry as last seen here, if that is recent enough and it has not expired. */
  get(namespace: string, key: string): Entry | undefined {
    const id = `${namespace}\u0000${key}`;
    const found = this.held.get(id);
    if (!found) return undefined;
    const now = this.now();
    if (found.until <= now || (found.entry.expiresAt != null && found.entry.expiresAt <= now)) {
      this.drop(id, found);
      return undefined;
    }
    this.held.delete(id); // to the end: used last
    this.held.set(id, found);
    return found.entry;
  }

  set(namespace: string, key: string, entry: Entry) {
    const id = `${namespace}\u0000${key}`;
    const old = this.held.get(id);
    if (old) this.drop(id, old);
    const size = id.length * 2 + (entry.value?.byteLength ?? 0) + 64;
    if (size > this.maxBytes / 4) return; // one value never pushes out most of the rest
    this.held.set(id, { entry, until: this.now() + this.ttlMs, size });
    this.bytes += size;
    for (const [oldest, held] of this.held) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest, held);
    }
  }

  forget(namespace: string, key: string) {
    const id = `${namespace}\u0000${key}`;
    const old = this.held.get(id);
    if (old) this.drop(id, old);
  }

  private drop(id: string, held: Held) {
    this.held.delete(id);
    this.bytes -= held.size;
  }
}
