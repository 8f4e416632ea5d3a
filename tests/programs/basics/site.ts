// A worker with a fetch handler and a function: what a tenant's own domain serves.
export default {
  fetch(request: Request): Response {
    const url = new URL(request.url);
    return Response.json({ host: url.host, path: url.pathname });
  },
};

export async function hello(payload: { name?: string }) {
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}
