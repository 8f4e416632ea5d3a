let calls = 0;
export async function hello(payload: { name?: string }) {
  console.log("hello to", payload?.name);
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}
export async function flaky() {
  calls++;
  console.log("attempt", calls);
  if (calls < 3) throw new Error(`flaky ${calls}`);
  return { calls };
}
export async function broken() {
  throw new Error("always broken");
}
export async function slow(payload: { ms: number }) {
  await new Promise((resolve) => setTimeout(resolve, payload.ms));
  return "slept";
}
export async function spin() {
  for (;;) {}
}
