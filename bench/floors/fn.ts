/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
async function hello(payload: { name?: string }) {
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}
self.onmessage = async (e: MessageEvent) => {
  const { id, payload } = e.data;
  const result = await hello(payload);
  self.postMessage({ id, result, logs: ["hello called"] });
};
