export async function slow(payload: unknown) {
  console.log("first line");
  await new Promise((resolve) => setTimeout(resolve, 5000));
  console.log("second line");
  return "done";
}
export async function chatty(payload: { lines: number }) {
  for (let i = 0; i < payload.lines; i++) console.log(`line ${i}`);
  console.log("x".repeat(10000));
  return payload.lines;
}
export async function flood(payload: { lines: number }) {
  // Far more than the shared ring between isolate and host holds at once, multi-byte text.
  for (let i = 0; i < payload.lines; i++) console.log(`${i} ` + "é€😀".repeat(700));
  return payload.lines;
}
