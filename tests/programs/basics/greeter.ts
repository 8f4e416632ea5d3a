export async function hello(payload: { name?: string }) {
  console.log("hello called");
  console.info("name is", payload?.name);
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}
