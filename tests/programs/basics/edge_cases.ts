export async function echo(payload: unknown) {
  return { got: payload };
}
export async function fail(payload: unknown) {
  console.log("step one");
  await new Promise((resolve) => setTimeout(resolve, 5));
  console.warn("step two");
  throw new Error("the widget is broken");
}
export async function spin(payload: unknown) {
  console.log("looping forever");
  while (true) {}
}
export async function nap(payload: { ms: number; tag: string }) {
  console.log(`start ${payload.tag}`);
  await new Promise((resolve) => setTimeout(resolve, payload.ms));
  console.log(`end ${payload.tag}`);
  return payload.tag;
}
export async function untyped(payload) {
  return payload;
}
