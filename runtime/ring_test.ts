// The shared ring console lines travel through: the host reads what an isolate wrote, and a
// ring holding garbage (tenant code has no way to it, but the host must not trust it) ends
// the reading at once instead of hanging or crashing the host.
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { LogRing, RECORD_HEADER_BYTES, type RingLine } from "./ring.ts";

const enc = new TextEncoder();

function ring(size = 1024) {
  const r = new LogRing(size);
  return {
    r,
    counters: new Int32Array(r.buffer, 0, 2),
    view: new DataView(r.buffer, 8),
    bytes: new Uint8Array(r.buffer, 8),
  };
}
type Ring = ReturnType<typeof ring>;

/** Writes a record as isolate.js does; returns its padded length. */
function put(t: Ring, at: number, seq: number, id: string, message: string, length?: number): number {
  const idB = enc.encode(id), msg = enc.encode(message);
  const len = length ?? RECORD_HEADER_BYTES + idB.length + msg.length;
  t.view.setUint32(at, len, true);
  t.view.setUint8(at + 4, 3); // warn
  t.view.setUint16(at + 6, idB.length, true);
  t.view.setUint32(at + 8, seq, true);
  t.view.setUint32(at + 12, 0, true);
  t.view.setFloat64(at + 16, 1.5, true);
  t.bytes.set(idB, at + RECORD_HEADER_BYTES);
  t.bytes.set(msg, at + RECORD_HEADER_BYTES + idB.length);
  return (len + 3) & ~3;
}

function drained(t: Ring) {
  const lines: RingLine[] = [];
  const intact = t.r.drain((line) => lines.push(line));
  return {
    intact,
    lines: lines.map((l) => [l.id, l.seq, l.level, l.message, l.ts]),
    read: Atomics.load(t.counters, 1),
  };
}

Deno.test("lines are read in order across the end of the ring", () => {
  const t = ring(128);
  Atomics.store(t.counters, 0, 96);
  Atomics.store(t.counters, 1, 96);
  t.view.setUint32(96, 0xffffffff, true); // the writer's mark: go on at the start
  const a = put(t, 0, 7, "req_1", "héllo 😀");
  const b = put(t, a, 8, "req_1", "second");
  Atomics.store(t.counters, 0, 128 + a + b);
  const got = drained(t);
  strictEqual(got.intact, true);
  deepStrictEqual(got.lines, [["req_1", 7, "warn", "héllo 😀", 1.5], ["req_1", 8, "warn", "second", 1.5]]);
});

for (
  const [name, length, written] of [["a zero length", 0, 64], ["a length past the end", 5000, 64], [
    "more than was written",
    60,
    32,
  ]] as const
) {
  Deno.test(`a record with ${name} stops the reading and the rest is dropped`, () => {
    const t = ring(1024);
    put(t, 0, 0, "req_x", "x".repeat(30), length);
    Atomics.store(t.counters, 0, written);
    const got = drained(t);
    strictEqual(got.intact, false);
    deepStrictEqual(got.lines, []);
    strictEqual(got.read, written); // the next read starts after what was written
  });
}

Deno.test("counters that claim more than the ring holds stop the reading", () => {
  const t = ring(1024);
  Atomics.store(t.counters, 0, 4096);
  const got = drained(t);
  strictEqual(got.intact, false);
  deepStrictEqual(got.lines, []);
  strictEqual(got.read, 4096);
});
