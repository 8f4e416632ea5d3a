// Threads of the tenant's own: a Web Worker (refused), and a node:worker_threads worker that
// spins after the call that started it has answered.
import { Worker as NodeWorker } from "node:worker_threads";

export async function webWorker() {
  const W = (globalThis as unknown as { Worker?: unknown }).Worker;
  if (typeof W !== "function") return "no Worker here";
  new (W as new (url: string, options: object) => unknown)("data:text/javascript,while(true){}", { type: "module" });
  return "started";
}

export async function nodeWorker() {
  new NodeWorker("while (true) {}", { eval: true });
  return "started";
}
