import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Journal } from "./journal.ts";

async function inTemp(test: (path: string) => void | Promise<void>) {
  const dir = Deno.makeTempDirSync();
  try {
    await test(`${dir}/host-0.ndjson`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("what was written and not shipped is recovered; what was shipped is not", () =>
  inTemp((path) => {
    const first = new Journal(path);
    const a = first.append("I", '{"requestId":"a"}');
    first.append("L", '{"requestId":"b"}');
    first.sync();
    first.shipped(a.end);
    first.close();
    const second = new Journal(path);
    deepStrictEqual(second.recover().map((e) => [e.kind, e.json]), [["L", '{"requestId":"b"}']]);
    second.close();
  }));

Deno.test("a torn last entry (a host killed in the middle of a write) is skipped", () =>
  inTemp((path) => {
    Deno.writeTextFileSync(path, 'I{"requestId":"whole"}\nI{"requestId":"to');
    const journal = new Journal(path);
    deepStrictEqual(journal.recover().map((e) => e.json), ['{"requestId":"whole"}']);
    journal.close();
  }));

Deno.test("entries appended in one turn are written together, before the turn's answers", () =>
  inTemp(async (path) => {
    const journal = new Journal(path);
    journal.append("I", "{}");
    journal.syncSoon();
    journal.append("L", "{}");
    journal.syncSoon();
    strictEqual(Deno.readTextFileSync(path), ""); // not yet: at the end of this turn
    await Promise.resolve(); // the next microtask: an answer's continuation
    strictEqual(Deno.readTextFileSync(path), "I{}\nL{}\n");
    journal.close();
  }));

Deno.test("an entry no answer waits on is on file within 10 ms, with no timer left behind", () =>
  inTemp(async (path) => {
    const journal = new Journal(path);
    const later = () => new Promise((resolve) => setTimeout(resolve, 30));
    for (const message of ["printed outside any call", "and again, after the first was written"]) {
      journal.append("L", JSON.stringify({ message }));
      await later();
    }
    deepStrictEqual(Deno.readTextFileSync(path).split("\n").map((line) => line && JSON.parse(line.slice(1)).message), [
      "printed outside any call",
      "and again, after the first was written",
      "",
    ]);
    // Nothing waits now, so nothing is armed: the test's sanitizer fails on a timer left behind.
    journal.close();
  }));

Deno.test("under reports that never stop, the file stays small and a new host recovers exactly the rest", () =>
  inTemp((path) => {
    const journal = new Journal(path);
    const padding = "x".repeat(1000);
    const entries: { id: number; end: number }[] = [];
    let largest = 0;
    let shippedThrough = -1; // the last entry acknowledged
    for (let id = 0; id < 12_000; id++) {
      entries.push({ id, end: journal.append("L", JSON.stringify({ id, padding })).end });
      if (id % 100 === 99 && id > 100) {
        journal.sync();
        // The control plane acknowledges the batch before this one: the newest are always
        // still on their way, as under calls that never stop.
        shippedThrough = id - 100;
        journal.shipped(entries[shippedThrough].end);
        largest = Math.max(largest, Deno.statSync(path).size);
      }
    }
    journal.close(); // killed: the last 100 were never acknowledged
    strictEqual(largest < 5 * 1024 * 1024, true, `the file reached ${largest} bytes for 12 MB of reports`);
    const next = new Journal(path);
    deepStrictEqual(
      next.recover().map((e) => JSON.parse(e.json).id),
      entries.slice(shippedThrough + 1).map((e) => e.id),
    );
    next.close();
  }));

Deno.test("a file shorter than its shipped mark (a compaction cut short) is all still to send", () =>
  inTemp((path) => {
    Deno.writeTextFileSync(path, 'I{"requestId":"a"}\nL{"requestId":"b"}\n');
    Deno.writeTextFileSync(`${path}.shipped`, "5000000");
    const journal = new Journal(path);
    deepStrictEqual(journal.recover().map((e) => JSON.parse(e.json).requestId), ["a", "b"]);
    journal.close();
  }));

Deno.test("a journal that cannot be written (a full disk) is set aside, said once, and nothing throws", () =>
  inTemp((path) => {
    Deno.symlinkSync("/dev/full", path); // every write fails: "No space left on device"
    const logged: string[] = [];
    const journal = new Journal(path, (message) => logged.push(message));
    const first = journal.append("I", '{"requestId":"a"}');
    journal.sync();
    journal.shipped(first.end);
    journal.append("L", '{"requestId":"b"}');
    journal.sync();
    strictEqual(logged.length, 1);
    strictEqual(logged[0].includes("cannot be written (No space left on device"), true, logged[0]);
    journal.close();
  }));

Deno.test("a host killed right after compacting, before its mark says so, loses nothing", () =>
  inTemp((path) => {
    const journal = new Journal(path, () => {});
    const padding = "x".repeat(1000);
    const ends = Array.from({ length: 8000 }, (_, id) => journal.append("L", JSON.stringify({ id, padding })).end);
    journal.sync();
    journal.shipped(ends[999]); // ~1 MB acknowledged: no compaction yet
    // The next acknowledgement passes 4 MB with ~3.9 MB still to send, more than the last
    // mark: the host is "killed" when it would write the mark after compacting.
    const write = Deno.writeTextFileSync;
    Deno.writeTextFileSync = (file, data, options) => {
      if (String(file).endsWith(".shipped") && data === "0") throw new Error("killed");
      return write(file, data, options);
    };
    try {
      journal.shipped(ends[4099]);
    } finally {
      Deno.writeTextFileSync = write;
    }
    journal.close();
    const next = new Journal(path);
    const ids = next.recover().map((e) => JSON.parse(e.json).id);
    deepStrictEqual(ids, Array.from({ length: 3900 }, (_, i) => 4100 + i));
    next.close();
  }));
