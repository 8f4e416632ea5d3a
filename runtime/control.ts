// The control plane as the host sees it: what a deployment host resolves to, API keys, code.
// Answers are cached briefly, so that a revoked key, a suspended tenant or a deleted worker
// stops answering within seconds without a restart; while the control plane cannot be
// reached, what was known keeps serving. The clock and fetch are passed in (tests).
import { isProductionHost } from "./routing.ts";
import type { DeploymentConfig, Pin } from "./pool.ts";

// A production host's answer also says the tenant's release generation it holds for, and its
// canary, if one takes a share of the traffic.
export type Production = { generation?: number; canary?: { host: string; percent: number } };
export type Resolved = {
  config?: DeploymentConfig & Production;
  status: number;
  error?: { code: string; message: string };
};
export type KeyInfo = { tenant: number; secretHash: string; scopes: string[] } | null;
/** A tenant's verified domain: its portal (served by the web processes), or which worker's
 * production serves each path prefix (longest first); null: the name is not served. */
export type DomainRoutes = { portal: boolean; routes: { prefix: string; host: string }[] } | null;

export type ControlOptions = {
  url: string;
  token: string;
  fetch?: typeof fetch;
  now?: () => number;
  timeoutMs?: number; // a hung control plane must not hang invocations forever
  hostTtlMs?: number;
  aliasTtlMs?: number; // production URLs move when a newer deployment is ready
  missTtlMs?: number;
  keyTtlMs?: number;
  maxCode?: number; // artifacts kept in memory
};

type Cached<T> = { value: T; expires: number };

export class ControlPlane {
  readonly hosts = new Map<string, Cached<Resolved>>();
  readonly code = new Map<string, string>();
  private keys = new Map<string, Cached<KeyInfo>>();
  readonly domains = new Map<string, Cached<DomainRoutes>>();
  private domainsInflight = new Map<string, Promise<DomainRoutes>>();
  private inflight = new Map<string, Promise<Resolved>>();
  private readonly o: Required<ControlOptions>;
  private readonly auth: Record<string, string>;

  constructor(options: ControlOptions) {
    this.o = {
      fetch: globalThis.fetch,
      now: Date.now,
      timeoutMs: 10_000,
      hostTtlMs: 2_000,
      aliasTtlMs: 1_000,
      missTtlMs: 1_000,
      keyTtlMs: 2_000,
      maxCode: 500,
      ...options,
      url: options.url.replace(/\/$/, ""),
    };
    this.auth = { authorization: `Bearer ${this.o.token}` };
  }

  /** GET or POST a control-plane path with the host's token and a timeout. */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    return this.o.fetch(`${this.o.url}${path}`, {
      ...init,
      headers: { ...this.auth, ...(init.body ? { "content-type": "application/json" } : {}) },
      signal: AbortSignal.timeout(this.o.timeoutMs),
    });
  }

  private rememberCode(artifact: string, code: string) {
    this.code.set(artifact, code);
    if (this.code.size > this.o.maxCode) this.code.delete(this.code.keys().next().value!); // the oldest in
  }

  private async fetchHost(host: string, key: string, pin?: Pin): Promise<Resolved> {
    const known = this.hosts.get(key)?.value.config?.artifact;
    const query = new URLSearchParams();
    if (known && this.code.has(known)) query.set("have", known);
    if (pin?.generation != null) {
      query.set("generation", String(pin.generation));
      query.set("tenant", String(pin.tenant));
    }
    const qs = query.size ? `?${query}` : "";
    const res = await this.request(`/internal/runtime/hosts/${encodeURIComponent(host)}${qs}`);
    const body = await res.json().catch(() => null);
    if (res.ok && body) {
      if (typeof body.code === "string") {
        this.rememberCode(body.artifact, body.code);
        delete body.code;
      }
      const ttl = body.alias ? this.o.aliasTtlMs : this.o.hostTtlMs;
      const value = { status: 200, config: body as DeploymentConfig };
      this.hosts.set(key, { value, expires: this.o.now() + ttl });
      return value;
    }
    if (res.status === 404 && body?.error) {
      const value = { status: 404, error: body.error };
      this.hosts.set(key, { value, expires: this.o.now() + this.o.missTtlMs });
      return value;
    }
    throw new Error(`control plane answered ${res.status}`);
  }

  /** What is known of a host, or a promise of it when it must be asked for (no await on the
   * warm path: every await costs the host thread a turn). */
  resolve(host: string, pin?: Pin): Resolved | Promise<Resolved> {
    let key = host;
    if (pin?.generation != null && isProductionHost(host)) {
      // A call made within a generation: the production host as of that generation. What is
      // cached for the host itself serves when it holds for the same one.
      const now = this.hosts.get(host);
      const config = now?.value.config;
      if (
        now && now.expires > this.o.now() && config?.tenant === pin.tenant && config.generation === pin.generation
      ) {
        return now.value;
      }
      key = `${host}@${pin.generation}`;
    } else {
      pin = undefined;
    }
    const hit = this.hosts.get(key);
    if (hit && hit.expires > this.o.now()) return hit.value;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetchHost(host, key, pin)
        .catch((err) => {
          // The control plane is unreachable: keep serving what we knew rather than fail.
          if (hit?.value.config) return hit.value;
          throw err;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  /** The control plane announced that these hosts changed: refresh them now, so a new
   * deployment's first call finds its code here; `learned` is told what each is now. */
  learn(hosts: string[], learned: (resolved: Resolved) => void = () => {}) {
    for (const host of hosts) {
      const hit = this.hosts.get(host);
      if (hit) hit.expires = 0; // stale, but kept to serve from if the control plane is down
      // A failure is retried by the first call.
      Promise.resolve(this.resolve(host)).then(learned).catch(() => {});
    }
  }

  /** A deployment about to be ready, to load ahead of its first call: never kept among the
   * hosts this host serves (it is not served until the control plane says it is ready);
   * null when the control plane does not answer it. */
  async preloading(host: string): Promise<DeploymentConfig | null> {
    const res = await this.request(`/internal/runtime/hosts/${encodeURIComponent(host)}?preload=1`);
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || typeof body.code !== "string") return null;
    this.rememberCode(body.artifact, body.code);
    delete body.code;
    return body as DeploymentConfig;
  }

  /** An API key by its prefix: its tenant, secret's digest and scopes; null if unknown. */
  async key(prefix: string): Promise<KeyInfo> {
    const hit = this.keys.get(prefix);
    if (hit && hit.expires > this.o.now()) return hit.value;
    const res = await this.request(`/internal/runtime/keys/${encodeURIComponent(prefix)}`);
    let value: KeyInfo = null;
    if (res.ok) value = await res.json();
    else await res.body?.cancel();
    if (!res.ok && res.status !== 404) throw new Error(`control plane answered ${res.status}`);
    this.keys.set(prefix, { value, expires: this.o.now() + this.o.keyTtlMs });
    return value;
  }

  /** What a tenant's domain serves (cached as a host is: a removed route, a domain whose
   * record went or a suspended tenant stops within seconds; known routes keep serving while
   * the control plane cannot be reached). */
  domain(hostname: string): DomainRoutes | Promise<DomainRoutes> {
    const hit = this.domains.get(hostname);
    if (hit && hit.expires > this.o.now()) return hit.value;
    let pending = this.domainsInflight.get(hostname);
    if (!pending) {
      pending = (async () => {
        const res = await this.request(`/internal/runtime/domains/${encodeURIComponent(hostname)}`);
        const body = await res.json().catch(() => null);
        if (!res.ok && res.status !== 404) throw new Error(`control plane answered ${res.status}`);
        const value: DomainRoutes = res.ok && Array.isArray(body?.routes)
          ? { portal: body.portal === true, routes: body.routes }
          : null;
        this.domains.set(hostname, { value, expires: this.o.now() + (value ? this.o.hostTtlMs : this.o.missTtlMs) });
        if (this.domains.size > 10_000) this.domains.delete(this.domains.keys().next().value!);
        return value;
      })()
        .catch((err) => {
          if (hit) return hit.value;
          throw err;
        })
        .finally(() => this.domainsInflight.delete(hostname));
      this.domainsInflight.set(hostname, pending);
    }
    return pending;
  }

  /** A deployment's bundle. */
  async loadCode(artifact: string): Promise<string> {
    const cached = this.code.get(artifact);
    if (cached !== undefined) return cached;
    const res = await this.request(`/internal/runtime/artifacts/${artifact}`);
    if (!res.ok) throw new Error(`artifact ${artifact}: control plane answered ${res.status}`);
    const code = await res.text();
    this.rememberCode(artifact, code);
    return code;
  }
}
