// The same function as bench/baseline.ts, served by workerd (Cloudflare's runtime).
async function hello(payload) {
  console.log("hello called");
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}

export default {
  async fetch(request) {
    const payload = await request.json();
    const result = await hello(payload);
    return Response.json({ result, logs: [] });
  },
};
