export async function token(payload: unknown) {
  return process.env.API_TOKEN ?? null;
}
