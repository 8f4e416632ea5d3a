export async function get(payload: { url: string; method?: string; body?: string }) {
  try {
    const res = await fetch(payload.url, { method: payload.method ?? "GET", body: payload.body });
    return { status: res.status, body: await res.text(), type: res.headers.get("content-type") };
  } catch (err) {
    return { refused: String(err) };
  }
}
