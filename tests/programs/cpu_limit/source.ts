export async function spin(payload: unknown) {
  console.log("spinning");
  while (true) {}
}
export async function bursts(payload: { n: number; ms: number }) {
  // Short bursts of work with a pause between them: never over the limit at a stretch.
  for (let i = 0; i < payload.n; i++) {
    const until = Date.now() + payload.ms;
    while (Date.now() < until) {}
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return "done";
}
export async function nap(payload: { ms: number; tag: string }) {
  console.log(`start ${payload.tag}`);
  await new Promise((resolve) => setTimeout(resolve, payload.ms));
  console.log(`end ${payload.tag}`);
  return payload.tag;
}
export async function echo(payload: unknown) {
  return payload;
}
