export async function pair(payload: { back: string; wait: number }) {
  await new Promise((resolve) => setTimeout(resolve, payload.wait));
  const answer = await fetch(payload.back, {
    method: "POST", headers: { "content-type": "application/json" }, body: "{}",
  });
  const body = await answer.json();
  return { front: "TAG", back: body.result ?? body.error?.code };
}
