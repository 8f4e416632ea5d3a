import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Journal } from "./journal.ts";
import { CpuCharges, type Invocation, Reporter, type Send } from "./reports.ts";

const line = (n: number) => ({ seq: n, level: "log", message: `line ${n}`, timestamp: "2026-12-05T00:00:00Z" });
const record = (id: string): Invocation => ({
  requestId: id,
  deploymentId: "d1",
  function: "hello",
  trigger: "http",
  status: "ok",
  statusCode: 200,
  durationMs: 1,
  startedAt: 0,
  errorMessage: "",
  cold: false,
  lines: 1,
});

/** A control plane that records what it was sent and answers `status`. */
function controlPlane(status = 200) {
  const sent: { path: string; body: { invocations: Invocation[]; logs: { requestId: string }[] } }[] = [];
  const plane = { status, sent, send: null as unknown as Send };
  plane.send = (path, body) => {
    sent.push({ path, body: JSON.parse(body) });
    return Promise.resolve(new Response(null, { status: plane.status }));
  };
  return plane;
}

function reporter(plane: ReturnType<typeof controlPlane>, path = "", extra = {}) {
  let now = 0;
  const clock = { advance: (ms: number) => (now += ms) };
  const logged: string[] = [];
  const journal = new Journal(path, (m) => logged.push(m));
  const reports = new Reporter({
    journal,
    send: plane.send,
    now: () => now,
    later: () => {}, // flushes are driven by the test
    log: (m) => logged.push(m),
    ...extra,
  });
  return { reports, clock, logged, journal };
}

Deno.test("records and lines go out in one batch, in the order they were made", async () => {
  const plane = controlPlane();
  const { reports } = reporter(plane);
  reports.line("d1", "req_a", "hello", line(0));
  reports.invocation(record("req_a"));
  reports.line("d1", "req_b", "hello", line(1));
  await reports.flush();
  strictEqual(plane.sent.length, 1);
  strictEqual(plane.sent[0].path, "/internal/runtime/ingest");
  deepStrictEqual(plane.sent[0].body.invocations.map((i) => i.requestId), ["req_a"]);
  deepStrictEqual(plane.sent[0].body.logs.map((l) => l.requestId), ["req_a", "req_b"]);
  strictEqual(reports.queued.length, 0);
});

Deno.test("a line printed outside any call gets its isolate's id, the same each time", async () => {
  const plane = controlPlane();
  const { reports } = reporter(plane);
  reports.line("d1", null, "", line(0));
  reports.line("d1", null, "", line(1));
  await reports.flush();
  const ids = plane.sent[0].body.logs.map((l) => l.requestId);
  strictEqual(ids[0], ids[1]);
  strictEqual(ids[0].startsWith("iso_"), true);
});

Deno.test("a failed batch is kept in front and sent again after a pause", async () => {
  const plane = controlPlane(503);
  const { reports, clock, logged } = reporter(plane);
  reports.invocation(record("req_1"));
  await reports.flush();
  strictEqual(reports.queued.length, 1);
  strictEqual(logged[0], "runtime: ingest failed (ingest answered 503); 1 reports queued");
  reports.invocation(record("req_2"));
  await reports.flush(); // within the pause: nothing is sent
  strictEqual(plane.sent.length, 1);
  plane.status = 200;
  clock.advance(1_000);
  await reports.flush();
  deepStrictEqual(plane.sent[1].body.invocations.map((i) => i.requestId), ["req_1", "req_2"]);
  strictEqual(reports.queued.length, 0);
});

Deno.test("with a journal that cannot be written, every report still goes out", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/host-0.ndjson`;
    Deno.symlinkSync("/dev/full", path);
    const plane = controlPlane();
    const { reports, logged, journal } = reporter(plane, path);
    reports.invocation(record("req_1"));
    reports.line("d1", "req_1", "hello", line(0));
    await reports.flush();
    reports.invocation(record("req_2"));
    await reports.flush();
    deepStrictEqual(plane.sent.map((s) => s.body.invocations.map((i) => i.requestId)), [["req_1"], ["req_2"]]);
    strictEqual(reports.queued.length, 0);
    strictEqual(logged.length, 1); // the journal's own notice, once
    journal.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a full queue drops newer reports and says how many", async () => {
  const plane = controlPlane();
  const { reports, logged } = reporter(plane, "", { maxQueued: 2 });
  reports.line("d1", "r", "f", line(0));
  reports.invocation(record("r"));
  reports.invocation(record("dropped"));
  reports.line("d1", "r", "f", line(1));
  await reports.flush();
  deepStrictEqual(plane.sent[0].body.invocations.map((i) => i.requestId), ["r"]);
  strictEqual(logged.at(-1), "runtime: queue full, dropped 1 log lines and 1 invocation records");
});

Deno.test("batches are bounded", async () => {
  const plane = controlPlane();
  const { reports } = reporter(plane, "", { batchSize: 2 });
  for (const id of ["a", "b", "c"]) reports.invocation(record(id));
  await reports.flush();
  strictEqual(plane.sent[0].body.invocations.length, 2);
  await reports.flush();
  deepStrictEqual(plane.sent[1].body.invocations.map((i) => i.requestId), ["c"]);
});

Deno.test("a batch stays under the control plane's body limit, whatever the lines' size", async () => {
  const plane = controlPlane();
  const { reports } = reporter(plane, "", { batchBytes: 20_000 });
  const long = (n: number) => ({ ...line(n), message: "x".repeat(8000) });
  for (let n = 0; n < 5; n++) reports.line("d1", "req_a", "flood", long(n));
  for (let i = 0; i < 3; i++) await reports.flush();
  deepStrictEqual(plane.sent.map((s) => s.body.logs.length), [2, 2, 1]); // every line, in order
  deepStrictEqual(plane.sent.flatMap((s) => s.body.logs.map((l) => (l as unknown as { seq: number }).seq)), [
    0,
    1,
    2,
    3,
    4,
  ]);
});

Deno.test("what the control plane did not acknowledge is sent by the next host from the journal", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/host-0.ndjson`;
    const plane = controlPlane();
    const first = reporter(plane, path);
    first.reports.invocation(record("sent"));
    await first.reports.flush();
    plane.status = 503; // the answer to the next batch never says yes
    first.reports.invocation(record("unsent"));
    first.reports.line("d1", "unsent", "hello", line(0));
    await first.reports.flush();
    first.journal.close(); // the host is killed; its lock goes with it
    const next = controlPlane();
    const second = reporter(next, path);
    strictEqual(second.logged[0], "runtime: 2 reports of a previous host to send again");
    await second.reports.flush();
    deepStrictEqual(next.sent[0].body.invocations.map((i) => i.requestId), ["unsent"]);
    deepStrictEqual(next.sent[0].body.logs.map((l) => l.requestId), ["unsent"]);
    second.journal.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("CPU charges are summed per tenant and a lost answer does not count twice", async () => {
  const sent: { id: string; cpu: Record<string, number>; limited: number[] }[] = [];
  let fail = true;
  const cpu = new CpuCharges((_path, body) => {
    sent.push(JSON.parse(body));
    return fail ? Promise.reject(new Error("lost")) : Promise.resolve(new Response(null, { status: 200 }));
  });
  cpu.charge(1, 100);
  cpu.charge(1, 50);
  cpu.charge(2, 10);
  await cpu.report();
  cpu.charge(1, 5); // after the lost answer: goes in the next report
  fail = false;
  await cpu.report();
  strictEqual(sent[0].id, sent[1].id);
  deepStrictEqual(sent[1].cpu, { 1: 150, 2: 10 });
  await cpu.report();
  deepStrictEqual(sent[2].cpu, { 1: 5 });
  cpu.limited(3);
  cpu.limited(3);
  await cpu.report(); // a tenant refused for its quota is named once, even without CPU
  deepStrictEqual([sent[3].cpu, sent[3].limited], [{}, [3]]);
  await cpu.report();
  strictEqual(sent.length, 4); // nothing new: nothing sent
});

Deno.test("at a stop, every queued report goes out, after the batch already on its way", async () => {
  const plane = controlPlane();
  const { reports } = reporter(plane, "", { batchSize: 2 });
  for (const id of ["a", "b", "c", "d", "e"]) reports.invocation(record(id));
  const first = reports.flush(); // on its way when the stop comes
  await reports.drain();
  await first;
  deepStrictEqual(plane.sent.flatMap((s) => s.body.invocations.map((i) => i.requestId)), ["a", "b", "c", "d", "e"]);
  strictEqual(reports.queued.length, 0);
});
