// A tenant's sandbox reduced to its shape: the host's channel (runtime/wire.ts) in, each call
// handed to one worker thread running the function (fn.ts), its answer out; no isolate pool,
// limits, console lines or bindings. What bench/sandbox.ts measures runtime/cell.ts against.
import { connectToHost, readMessages, Writer } from "../../runtime/wire.ts";

const conn = await connectToHost(Deno.env.get("RUNTIME_CHANNEL") ?? "");
let inFlight = 0;
const out = new Writer(conn.writable.getWriter(), () => inFlight > 0);
const worker = new Worker(new URL("./fn.ts", import.meta.url), {
  type: "module",
});
worker.onmessage = (e: MessageEvent) => {
  inFlight--;
  const { id, result } = e.data;
  out.send({
    t: "done",
    id,
    cold: false,
    outcome: { status: 200, code: "ok", json: JSON.stringify(result) },
  });
};
out.send({ t: "ready" });
readMessages(conn.readable, (m) => {
  if (m.t !== "call") return;
  inFlight++;
  worker.postMessage({ id: m.id, payload: m.payload });
}).finally(() => Deno.exit(0));
