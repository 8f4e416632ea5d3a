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
