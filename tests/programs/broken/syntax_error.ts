export async function hello(payload: unknown {
  return 1;
}
