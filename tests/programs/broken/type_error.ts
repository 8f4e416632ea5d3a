export async function hello(payload: { name: string }) {
  const count: number = payload.name;
  return count;
}
