// A worker: every exported async function can be called with
//   POST <url>/api/invoke/<name>   {"name": "you"}
// and answers {"result": ..., "logs": [...]}.

export async function hello(payload: { name?: string }) {
  const name = payload?.name ?? "world";
  console.log(`greeting ${name}`);
  return { greeting: `Hello, ${name}!` };
}
