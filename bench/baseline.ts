// The baseline: a bare Deno.serve running the same function in-process, no platform around it.
export async function hello(payload: { name?: string }) {
  console.log("hello called");
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}

const port = Number(Deno.args[0] ?? "8790");
Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log("baseline ready") }, async (req) => {
  const payload = await req.json();
  const logs: string[] = [];
  const result = await hello(payload);
  return Response.json({ result, logs });
});
