// Calls between the tenant's workers see one release whole, as on the local runtime. A call
// that came in through its worker's production address (or from such a chain, with the
// generation header) sends its fetches of the tenant's other production addresses to the
// deployment each one served in that same release generation, at its own immutable URL:
// the platform names it (peerUrl). A release moves its aliases one by one; a chain of calls
// never meets half of it. Any other fetch goes out as it is.
import contract from "./contract.json";
import config from "./deployment.json";

type Peers = { peerUrl?: string; aliasDomain?: string; productionHost?: string };
// `peers`: what each production address resolved to within this call (its generation is
// fixed once known, so the answer does not change during the call).
type Pin = { generation: number | null; peers?: Map<string, string | null> };
const own = config as typeof config & Peers;
const GENERATION = contract.headers.generation;

/** The call's pin: through the production address (its generation asked for at its first
 * fetch of a peer), or the generation a caller within a chain sent; else none. */
export function pinOf(request: Request): Pin | undefined {
  const sent = request.headers.get(GENERATION) ?? "";
  if (/^\d{1,12}$/.test(sent)) return { generation: Number(sent) };
  const host = (request.headers.get("x-forwarded-host") ?? request.headers.get("host") ?? "").toLowerCase();
  return own.productionHost && host.split(":")[0] === own.productionHost ? { generation: null } : undefined;
}

type Fetch = typeof fetch;

/** globalThis.fetch, sending a pinned call's fetches of production addresses to the release's
 * deployments. `pin()` gives the pin of the call running now (AsyncLocalStorage). */
export function pinnedFetch(plain: Fetch, pin: () => Pin | undefined, token: string): Fetch {
  return async function fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const current = pin();
    if (!current || !own.peerUrl || !own.aliasDomain) return plain(input, init);
    // (The URL alone first: a Request made of a streamed body would take it from the fetch.)
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.hostname.toLowerCase().endsWith(`.${own.aliasDomain}`)) return plain(input, init);
    const request = new Request(input, init);
    const peers = (current.peers ??= new Map());
    let target = peers.get(url.hostname);
    if (target === undefined) {
      const query = new URLSearchParams({ host: url.hostname });
      if (current.generation !== null) query.set("generation", String(current.generation));
      const asked = await plain(`${own.peerUrl}?${query}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      });
      if (!asked.ok) {
        throw new TypeError(`fetch ${url.host}: the platform could not say which release it serves (it answered ${asked.status}).`);
      }
      const peer = (await asked.json()) as { url: string | null; generation: number | null };
      target = peer.url;
      current.generation ??= peer.generation; // every later fetch of the call: the same release
      peers.set(url.hostname, target);
    }
    if (!target) return plain(request);
    const headers = new Headers(request.headers);
    headers.set(GENERATION, String(current.generation));
    return plain(new URL(url.pathname + url.search, target), {
      method: request.method,
      headers,
      body: request.body,
      redirect: request.redirect,
      signal: request.signal,
      duplex: "half",
    } as RequestInit);
  };
}
