// Deno.serve handing each call to one worker thread (an isolate) and answering: the least a
// design with the tenant's code on its own thread does.
const port = Number(Deno.args[0] ?? "8791");
const worker = new Worker(new URL("./fn.ts", import.meta.url), {
  type: "module",
});
const waiting = new Map<number, (v: unknown) => void>();
let next = 0;
worker.onmessage = (e) => {
  const { id, result, logs } = e.data;
  waiting.get(id)!({ result, logs });
  waiting.delete(id);
};
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () => console.log("ready"),
}, async (req) => {
  const payload = await req.json();
  const id = next++;
  const answer = await new Promise((resolve) => {
    waiting.set(id, resolve);
    worker.postMessage({ id, payload });
  });
  return Response.json(answer);
});
