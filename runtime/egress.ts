// Outbound requests of tenant code. Isolates have no network permission at all; their
// `fetch` asks their sandbox's network thread (network.ts), which applies the operator's
// policy and then fetches:
//   * http and https only; at most MAX_REDIRECTS redirects, each hop checked again;
//   * RUNTIME_EGRESS_DENY (host names, ".suffix" for a domain and its subdomains, or IPs):
//     always refused;
//   * RUNTIME_EGRESS_ALLOW: when set, only these are reachable (and they may be private:
//     the operator named them); when empty, any public address is;
//   * loopback, private, link-local, shared, multicast and reserved addresses are refused
//     (the control plane, Redis, Postgres and the cloud metadata service live there), after
//     resolving the name, so a public name pointing inward is refused too.

import { readLimited } from "./body.ts";

const list = (value: string) => value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);

/** The operator's rules, and how names are resolved (passed in by tests). */
export type Policy = {
  allow: string[];
  deny: string[];
  resolve: (host: string, type: "A" | "AAAA") => Promise<string[]>;
};

export function policy(allow: string, deny: string, resolve: Policy["resolve"] = Deno.resolveDns): Policy {
  return { allow: list(allow), deny: list(deny), resolve };
}

const POLICY = policy(Deno.env.get("RUNTIME_EGRESS_ALLOW") ?? "", Deno.env.get("RUNTIME_EGRESS_DENY") ?? "");
const MAX_REDIRECTS = 5;
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

export class Refused extends Error {}

function listed(host: string, entries: string[]): boolean {
  return entries.some((e) => (e.startsWith(".") ? host.endsWith(e) || host === e.slice(1) : host === e));
}

function v4(address: string): number[] | null {
  const parts = address.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.map(Number);
}

function privateV4([a, b, c]: number[]): boolean {
  return a === 0 || a === 10 || a === 127 || a >= 224 ||
    (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) ||
    (a === 192 && b === 0 && (c === 0 || c === 2)) || (a === 198 && (b === 18 || b === 19)) ||
    (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113);
}

function v6Groups(address: string): number[] | null {
  let text = address.replace(/^\[|\]$/g, "").split("%")[0];
  const tail = text.match(/(\d+\.\d+\.\d+\.\d+)$/); // an embedded IPv4 address
  if (tail) {
    const q = v4(tail[1]);
    if (!q) return null;
    text = text.slice(0, -tail[1].length) + `${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}

function privateV6(g: number[]): boolean {
  const embedded = [g[6] >> 8, g[6] & 255, g[7] >> 8, g[7] & 255];
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
    return g[5] === 0 && g[6] === 0 ? true : privateV4(embedded); // ::, ::1, ::a.b.c.d, ::ffff:a.b.c.d
  }
  if (g[0] === 0x64 && g[1] === 0xff9b) return privateV4(embedded); // NAT64
  return (g[0] & 0xfe00) === 0xfc00 || (g[0] & 0xffc0) === 0xfe80 || (g[0] & 0xff00) === 0xff00 ||
    (g[0] === 0x2001 && g[1] === 0xdb8);
}

export function isPrivateAddress(address: string): boolean {
  const q = v4(address);
  if (q) return privateV4(q);
  const g = v6Groups(address);
  return g ? privateV6(g) : true; // not an address we understand: refuse
}

async function addresses(host: string, resolve: Policy["resolve"]): Promise<string[]> {
  if (v4(host) || v6Groups(host)) return [host.replace(/^\[|\]$/g, "")];
  const found = await Promise.allSettled([resolve(host, "A"), resolve(host, "AAAA")]);
  const all = found.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
  if (!all.length) throw new Refused(`Outbound request refused: ${host} does not resolve.`);
  return all;
}

export async function check(url: URL, rules: Policy = POLICY): Promise<void> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Refused(`Outbound request refused: only http and https are allowed, not ${url.protocol}`);
  }
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (listed(host, rules.deny)) {
    throw new Refused(`Outbound request refused: ${host} is on the operator's deny list.`);
  }
  if (rules.allow.length) {
    if (listed(host, rules.allow) || listed(`${host}:${url.port}`, rules.allow)) return;
    throw new Refused(`Outbound request refused: ${host} is not on the operator's allow list.`);
  }
  for (const address of await addresses(host, rules.resolve)) {
    if (listed(address, rules.deny)) {
      throw new Refused(`Outbound request refused: ${host} (${address}) is on the operator's deny list.`);
    }
    if (isPrivateAddress(address)) {
      throw new Refused(
        `Outbound request refused: ${host} is ${address}, a loopback, private or reserved address; workers reach only public addresses.`,
      );
    }
  }
}

export type FetchRequest = { url: string; method: string; headers: [string, string][]; body: ArrayBuffer | null };
export type FetchAnswer =
  | { ok: true; status: number; statusText: string; headers: [string, string][]; body: ArrayBuffer; url: string }
  | { ok: false; error: string };

/** One outbound request, policy applied to every hop; the whole answer is read (bounded). */
export async function egress(req: FetchRequest, timeoutMs: number): Promise<FetchAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  let url = new URL(req.url);
  let method = req.method;
  let body = req.body;
  try {
    for (let hop = 0;; hop++) {
      await check(url);
      const res = await fetch(url, { method, headers: req.headers, body, redirect: "manual", signal });
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location && hop < MAX_REDIRECTS) {
        await res.body?.cancel();
        url = new URL(location, url);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
          method = "GET";
          body = null;
        }
        continue;
      }
      const all = await readLimited(res.body, MAX_RESPONSE_BYTES);
      if (all === null) {
        throw new Refused(`The response of ${url.host} is larger than ${MAX_RESPONSE_BYTES} bytes.`);
      }
      return {
        ok: true,
        status: res.status,
        statusText: res.statusText,
        headers: [...res.headers],
        body: all.buffer,
        url: url.href,
      };
    }
  } catch (err) {
    return {
      ok: false,
      error: err instanceof Refused ? err.message : `Outbound request to ${url.host} failed: ${(err as Error).message}`,
    };
  }
}
