// Console lines travel from an isolate to the host through shared memory, not messages: a
// line costs no cross-thread message (a third of the messages a call made), and a line is
// the host's as soon as console.log returns, so the lines printed before a loop that never
// ends, or before the isolate runs out of memory, are still there when it is stopped.
//
// One writer (the isolate, isolate.js) and one reader (the host). The header holds two
// 32-bit byte counters that only grow (and wrap): `written` and `read`; a position in the
// data is the counter modulo its size (a power of two). A record, 4-byte aligned:
//   u32 length of the whole record | u8 level | u8 0 | u16 id bytes | u32 seq |
//   u32 function-name bytes | f64 timestamp (ms) | UTF-8 of id + function name + message
// A length of 0xFFFFFFFF means "the rest up to the end is unused: go on at the start".
// The writer waits (Atomics.wait, a worker thread may) while the reader has not freed room.

export const LEVELS = ["log", "info", "debug", "warn", "error"];
export const HEADER_BYTES = 8;
export const RECORD_HEADER_BYTES = 24;
export const WRAP = 0xffffffff;

/** Big enough for several of the longest lines a deployment may print; a power of two. */
export function ringBytes(maxLineBytes: number): number {
  let size = 64 * 1024;
  while (size < 4 * (maxLineBytes + 2048)) size *= 2;
  return size;
}

export type RingLine = { id: string; fn: string; seq: number; level: string; message: string; ts: number };

export class LogRing {
  readonly buffer: SharedArrayBuffer;
  private counters: Int32Array;
  private bytes: Uint8Array;
  private view: DataView;
  private size: number;
  private decoder = new TextDecoder();

  constructor(size: number) {
    this.buffer = new SharedArrayBuffer(HEADER_BYTES + size);
    this.counters = new Int32Array(this.buffer, 0, 2);
    this.bytes = new Uint8Array(this.buffer, HEADER_BYTES);
    this.view = new DataView(this.buffer, HEADER_BYTES);
    this.size = size;
  }

  get pending(): boolean {
    return Atomics.load(this.counters, 0) !== Atomics.load(this.counters, 1);
  }

  /** Hands every line written so far to `each`, in order, and frees their room. False if
   * the ring holds something no writer of ours would write: the isolate is not to be
   * trusted further (its lines stop here; the caller stops it). */
  drain(each: (line: RingLine) => void): boolean {
    const written = Atomics.load(this.counters, 0) >>> 0;
    let read = Atomics.load(this.counters, 1) >>> 0;
    let intact = ((written - read) >>> 0) <= this.size;
    while (intact && read !== written) {
      const at = read % this.size;
      const left = (written - read) >>> 0;
      const length = this.view.getUint32(at, true);
      if (length === WRAP) {
        read = (read + (this.size - at)) >>> 0;
        intact = this.size - at <= left;
        continue;
      }
      const idBytes = this.view.getUint16(at + 6, true);
      const fnBytes = this.view.getUint32(at + 12, true);
      const padded = (length + 3) & ~3;
      if (
        length < RECORD_HEADER_BYTES || at + length > this.size || padded > left ||
        RECORD_HEADER_BYTES + idBytes + fnBytes > length
      ) {
        intact = false;
        break;
      }
      const text = at + RECORD_HEADER_BYTES;
      // TextDecoder does not read shared memory: each part is copied out first.
      const decode = (from: number, to: number) => this.decoder.decode(this.bytes.slice(from, to));
      each({
        level: LEVELS[this.view.getUint8(at + 4)] ?? "log",
        seq: this.view.getUint32(at + 8, true),
        ts: this.view.getFloat64(at + 16, true),
        id: decode(text, text + idBytes),
        fn: decode(text + idBytes, text + idBytes + fnBytes),
        message: decode(text + idBytes + fnBytes, at + length),
      });
      read = (read + padded) >>> 0;
    }
    Atomics.store(this.counters, 1, (intact ? read : written) | 0);
    Atomics.notify(this.counters, 1); // a writer waiting for room
    return intact;
  }
}
