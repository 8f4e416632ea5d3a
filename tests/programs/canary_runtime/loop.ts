export async function loop(payload: { url: string }) {
  const answer = await fetch(payload.url, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload),
  });
  const body = await answer.json();
  return body.error?.code ?? body.result;
}
