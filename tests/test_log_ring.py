"""The shared ring console lines travel through: the host reads what an isolate wrote, and a
ring holding garbage (tenant code has no way to it, but the host must not trust it) ends the
reading at once instead of hanging or crashing the host."""

import json
import subprocess
from pathlib import Path

from deployments.deno import deno_bin, deno_env

RING = Path(__file__).resolve().parent.parent / "deployments" / "runtime" / "ring.ts"

SCRIPT = """
import { LogRing, RECORD_HEADER_BYTES } from "RING";
const enc = new TextEncoder();
function ring(size = 1024) {
  const r = new LogRing(size);
  return { r, counters: new Int32Array(r.buffer, 0, 2), view: new DataView(r.buffer, 8), bytes: new Uint8Array(r.buffer, 8) };
}
function put(t, at, seq, id, message, length = undefined) {
  const idB = enc.encode(id), msg = enc.encode(message);
  const len = length ?? RECORD_HEADER_BYTES + idB.length + msg.length;
  t.view.setUint32(at, len, true); t.view.setUint8(at + 4, 3); t.view.setUint16(at + 6, idB.length, true);
  t.view.setUint32(at + 8, seq, true); t.view.setUint32(at + 12, 0, true); t.view.setFloat64(at + 16, 1.5, true);
  t.bytes.set(idB, at + RECORD_HEADER_BYTES); t.bytes.set(msg, at + RECORD_HEADER_BYTES + idB.length);
  return (len + 3) & ~3;
}
const out = {};
const drained = (t) => { const lines = []; const intact = t.r.drain((l) => lines.push(l)); return { intact, lines, read: Atomics.load(t.counters, 1) }; };
{ // two good lines, the second wrapping past the end
  const t = ring(128);
  Atomics.store(t.counters, 0, 96); Atomics.store(t.counters, 1, 96);
  t.view.setUint32(96, 0xffffffff, true);
  const a = put(t, 0, 7, "req_1", "héllo 😀");
  const b = put(t, a, 8, "req_1", "second");
  Atomics.store(t.counters, 0, 128 + a + b);
  out.good = drained(t);
}
for (const [name, length, written] of [["zero length", 0, 64], ["past the end", 5000, 64], ["more than written", 60, 32]]) {
  const t = ring(1024);
  put(t, 0, 0, "req_x", "x".repeat(30), length);
  Atomics.store(t.counters, 0, written);
  out[name] = drained(t);
}
{ // counters that claim more than the ring holds
  const t = ring(1024);
  Atomics.store(t.counters, 0, 4096);
  out.overfull = drained(t);
}
console.log(JSON.stringify(out, (k, v) => (k === "lines" ? v.map((l) => [l.id, l.seq, l.level, l.message, l.ts]) : v)));
"""


def run_script(tmp_path) -> dict:
    script = tmp_path / "ring_check.ts"
    script.write_text(SCRIPT.replace("RING", RING.as_uri()))
    done = subprocess.run(
        [deno_bin(), "run", "--quiet", str(script)],
        capture_output=True, text=True, timeout=60, env=deno_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_lines_are_read_in_order_across_the_end_of_the_ring(tmp_path):
    good = run_script(tmp_path)["good"]
    assert good["intact"] is True
    assert good["lines"] == [
        ["req_1", 7, "warn", "héllo 😀", 1.5],
        ["req_1", 8, "warn", "second", 1.5],
    ]


def test_garbage_in_the_ring_stops_the_reading_and_drops_it(tmp_path):
    result = run_script(tmp_path)
    for case in ["zero length", "past the end", "more than written", "overfull"]:
        assert result[case]["intact"] is False, case
        assert result[case]["lines"] == [], case
    # The rest is dropped: the next read starts after what was written.
    assert result["zero length"]["read"] == 64 and result["overfull"]["read"] == 4096
