// Memory per deployment, the floor of each way to hold one: N small "deployments" (their own
// globals, a function, a console capture), each loaded and called once, then resident memory
// compared with before. `deno run -A memory.ts MODE N`, MODE one of:
//   contexts: one worker thread holding N node:vm contexts (one V8 isolate shared);
//   workers: N node:worker_threads workers (the platform's isolates are these);
//   web-workers: N Web Workers.
// Prints one line of JSON: {mode, n, mbEach}.
import { Worker as NodeWorker } from "node:worker_threads";

const [mode, count] = [Deno.args[0], Number(Deno.args[1] ?? 200)];
const rssMb = () => Deno.memoryUsage().rss / 1048576;
const CODE = `
const lines = [];
globalThis.console = { log: (...a) => lines.push(a.join(" ")) };
async function hello(payload) {
  console.log("hello called");
  return { greeting: "Hello, " + (payload?.name ?? "world") + "!" };
}
globalThis.exported = { hello };
`;
// Each keeps listening, as a loaded deployment does (a finished worker would end its thread).
const NODE_WORKER = `const { parentPort } = require("node:worker_threads");
${CODE}
exported.hello({}).then(() => parentPort.postMessage(1));
parentPort.on("message", () => {});`;
const CONTEXTS = `const vm = require("node:vm");
const { parentPort, workerData } = require("node:worker_threads");
const held = [];
for (let i = 0; i < workerData.count; i++) {
  const context = vm.createContext({});
  vm.runInContext(workerData.code, context);
  held.push(context);
}
Promise.all(held.map((c) => c.exported.hello({}))).then(() => parentPort.postMessage(1));
parentPort.on("message", () => {});`;
const WEB_WORKER = `${CODE}
exported.hello({}).then(() => postMessage(1));
onmessage = () => {};`;

const answered = (worker: { once?: unknown; onmessage?: unknown }) =>
  new Promise((resolve) => {
    if (worker instanceof NodeWorker) worker.once("message", resolve);
    else (worker as Worker).onmessage = resolve;
  });

await new Promise((r) => setTimeout(r, 300));
const before = rssMb();
const held: unknown[] = [];
if (mode === "contexts") {
  const worker = new NodeWorker(CONTEXTS, {
    eval: true,
    workerData: { count, code: CODE },
  });
  held.push(worker);
  await answered(worker);
} else if (mode === "workers") {
  for (let i = 0; i < count; i++) {
    held.push(new NodeWorker(NODE_WORKER, { eval: true }));
  }
  await Promise.all(held.map((w) => answered(w as NodeWorker)));
} else if (mode === "web-workers") {
  const url = URL.createObjectURL(
    new Blob([WEB_WORKER], { type: "text/javascript" }),
  );
  for (let i = 0; i < count; i++) {
    held.push(new Worker(url, { type: "module" }));
  }
  await Promise.all(held.map((w) => answered(w as Worker)));
} else {
  throw new Error(`unknown mode ${mode}: contexts, workers or web-workers`);
}
await new Promise((r) => setTimeout(r, 1000));
console.log(
  JSON.stringify({ mode, n: count, mbEach: (rssMb() - before) / count }),
);
Deno.exit(0);
