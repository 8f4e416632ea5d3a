// The sandbox process's one door to the network: its isolates' outbound requests (egress.ts:
// the operator's policy on every hop), in a thread of their own. This thread keeps the network
// permission that the rest of the process gives up before its first isolate starts (pool.ts,
// Sandbox), so tenant code, whose threads are started after that, has none.
/// <reference lib="deno.worker" />
import { egress, type FetchRequest } from "./egress.ts";

self.onmessage = async (event: MessageEvent<{ id: number; req: FetchRequest; timeoutMs: number }>) => {
  const { id, req, timeoutMs } = event.data;
  const answer = await egress(req, timeoutMs);
  self.postMessage({ id, answer }, answer.ok ? [answer.body] : []);
};
self.postMessage({ ready: true }); // loaded: its process may now give up reading files
