// The sandbox root: one Web Worker per host process, started with no permissions at all.
// It starts each deployment's isolate as a node:worker_threads worker, because only those
// take a heap limit (resourceLimits): an isolate that goes over it is stopped on its own
// (ERR_WORKER_OUT_OF_MEMORY) instead of taking the whole process down. Started from here,
// the isolates share this worker's empty set of permissions, never the host's. The host
// talks to each isolate over its own MessagePort; this worker only starts and stops them.
/// <reference lib="deno.worker" />
import { Worker as NodeWorker } from "node:worker_threads";

let isolateUrl = null;
const isolates = new Map();

function start(msg) {
  const isolate = new NodeWorker(new URL(isolateUrl), {
    resourceLimits: { maxOldGenerationSizeMb: msg.memoryMb },
    workerData: { port: msg.port },
    transferList: [msg.port],
  });
  isolates.set(msg.id, isolate);
  isolate.on("error", (/** @type {Error & { code?: string }} */ err) => {
    self.postMessage({ t: "died", id: msg.id, code: err?.code ?? "", message: String(err?.message ?? err) });
  });
  isolate.on("exit", (exitCode) => {
    isolates.delete(msg.id);
    self.postMessage({ t: "exited", id: msg.id, exitCode });
  });
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.t === "init") isolateUrl = msg.isolateUrl;
  else if (msg.t === "start") start(msg);
  else if (msg.t === "stop") isolates.get(msg.id)?.terminate();
};
