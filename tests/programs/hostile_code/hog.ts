export async function hog(payload: unknown) {
  const kept: number[][] = [];
  while (true) kept.push(new Array(100_000).fill(1.5));
}
export async function ok(payload: unknown) {
  return "fine";
}
