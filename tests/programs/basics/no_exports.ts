async function hidden(payload: unknown) {
  return 1;
}
export const answer = 42;
