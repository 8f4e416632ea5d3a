// Where a request goes: the deployment host it names (by subdomain or by /d/<host>/ path) and
// the path within it; which side of a canary serves it. Pure functions: no I/O, no clock.
//
// A host is `<worker>--<tenant>` (a worker's production URL) or `<worker>--<deployment>--<tenant>`
// (one deployment's own URL); the control plane's side of the grammar is workers/addresses.py.
import { HEADERS } from "./contract.ts";

/** The path of a request URL, without parsing all of it (the host thread's time is the
 * platform's throughput). */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const end = url.indexOf("?", start);
  return end < 0 ? url.slice(start) : url.slice(start, end);
}

/** The deployment host a request names and its path there; host null: none (the host's own
 * paths such as /healthz). `hostname` is the Host header's name, without the port. */
export function route(pathname: string, hostname: string, domain: string): { host: string | null; path: string } {
  if (pathname.startsWith("/d/")) {
    const rest = pathname.slice(3);
    const slash = rest.indexOf("/");
    return slash < 0
      ? { host: rest.toLowerCase(), path: "/" }
      : { host: rest.slice(0, slash).toLowerCase(), path: rest.slice(slash) };
  }
  const name = hostname.toLowerCase();
  if (name.endsWith(`.${domain}`)) return { host: name.slice(0, -(domain.length + 1)), path: pathname };
  return { host: null, path: pathname };
}

/** The Host header's name without its port. */
export function hostnameOf(headers: Headers): string {
  return (headers.get("host") ?? "").replace(/:\d+$/, "").toLowerCase();
}

/** A worker's production host (`<worker>--<tenant>`), as opposed to one deployment's. */
export function isProductionHost(host: string): boolean {
  return host.split("--").length === 2;
}

/** The deployment part of a deployment's own host (what the deployment header carries). */
export function deploymentPart(host: string): string {
  return host.split("--")[1] ?? "";
}

/** FNV-1a: the same client lands on the same side of a canary, on every host. */
export function bucket(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 100;
}

/** Which side of a canary serves this request: a client that names itself (the client-id
 * header, else its API key) always gets the same side while the share is unchanged; others
 * are spread at random. */
export function takesCanary(headers: Headers, host: string, percent: number, random = Math.random): boolean {
  const client = headers.get(HEADERS.clientId) ??
    (headers.get("authorization") ?? "").match(/^Bearer (wk_[0-9a-f]+)_/)?.[1];
  const roll = client ? bucket(`${host}|${client}`) : Math.floor(random() * 100);
  return roll < percent;
}

/** Which route of a domain serves a path: the longest prefix it starts with (`/api/` serves
 * `/api` too); null when none does. Routes come longest first. */
export function domainRoute(routes: { prefix: string; host: string }[], path: string): string | null {
  for (const { prefix, host } of routes) {
    if (path.startsWith(prefix) || path === prefix.slice(0, -1)) return host;
  }
  return null;
}

/** A name that may be a tenant's own domain: not an address, not a bare name. */
export function mayBeDomain(hostname: string): boolean {
  return hostname.includes(".") && !/^[\d.]+$/.test(hostname) && !hostname.startsWith("[");
}
