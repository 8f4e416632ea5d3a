// The host's side of a sandbox (cells.ts) with a stand-in sandbox process that speaks the
// channel (wire.ts) and misbehaves: whatever it says, the host keeps to what it gave it.
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { Cell } from "./cells.ts";
import type { DeploymentConfig, LogLine } from "./pool.ts";

// Answers each call with a line for that call's deployment and one for a deployment the host
// never gave it, as a sandbox whose main thread were taken over would.
const SANDBOX = `
import { connectToHost, readMessages, Writer } from "${new URL("./wire.ts", import.meta.url).href}";
const conn = await connectToHost(Deno.env.get("RUNTIME_CHANNEL"));
const out = new Writer(conn.writable.getWriter());
const line = (message) => ({ seq: 0, level: "log", message, timestamp: new Date().toISOString() });
out.send({ t: "ready" });
await readMessages(conn.readable, (m) => {
  if (m.t !== "call") return;
  out.send({ t: "lines", list: [[m.d, m.id, m.fn, line("its own")], ["someone-elses", m.id, m.fn, line("forged")]] });
  out.send({ t: "done", id: m.id, cold: false, outcome: { status: 200, json: "1" } });
});
`;

const CONFIG = {
  id: "given",
  tenant: 1,
  public: true,
  host: "given",
  functions: ["f"],
  http: false,
  artifact: "a",
  timeoutMs: 5_000,
  cpuMs: 5_000,
  maxBodyBytes: 1_000,
  invocationsPerMinute: 100,
  maxLogLines: 10,
  maxLineBytes: 100,
  maxConcurrency: 10,
  maxResultBytes: 1_000,
  memoryMb: 64,
  env: {},
  kv: {},
} as DeploymentConfig; // deno-fmt-ignore

Deno.test("a sandbox's console lines go only into the deployments the host gave it", async () => {
  const script = await Deno.makeTempFile({ suffix: ".js" });
  await Deno.writeTextFile(script, SANDBOX);
  const logged: [string, string | null, string, string][] = [];
  const ended = Promise.withResolvers<void>();
  const cell = new Cell({
    command: [Deno.execPath(), "run", "-A", "--no-config", "--quiet", script],
    env: { PATH: Deno.env.get("PATH") ?? "" },
    maxCells: 1,
    spares: 0,
    memoryBytes: 1 << 30,
    idleMs: 60_000,
    cgroups: false,
    loadCode: () => Promise.resolve(""),
    lateLog: (deployment, request, fn, line: LogLine) => void logged.push([deployment, request, fn, line.message]),
    internal: () => null,
    charge: () => {},
    bind: () => Promise.resolve({ status: 404, body: {} }),
    operations: () => {},
  }, () => ended.resolve());
  const answer = await cell.call(CONFIG, "req_1", "f", {});
  strictEqual(answer.status, 200);
  deepStrictEqual(logged, [["given", "req_1", "f", "its own"]]);
  deepStrictEqual(answer.logs.map((line) => line.message), ["its own"]);
  cell.kill("evicted", "the test is over");
  await ended.promise;
  await Deno.remove(script);
});
