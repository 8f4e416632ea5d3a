// The platform's types for a worker's code: `import type { Context } from "@functions/context"`
// (the build, `functions dev` and the editor resolve it to this file).

/** What a call's code gets beside its payload (a function) or its request (a fetch handler). */
export interface Context {
  /** The worker's plain settings and secrets, as they were when this deployment was made. */
  readonly env: Readonly<Record<string, string>>;
  /** This call's id: in its answer, its console lines, its record and the portal. */
  readonly requestId: string;
  /** Work to finish after the answer has left (flush analytics, send a mail): the call stays
   * open until it settles, within the worker's time and CPU limits; its console lines and a
   * failure are recorded with the call. Call it before the function returns. */
  waitUntil(work: Promise<unknown>): void;
  /** The key-value namespaces bound to this worker, by binding name (as deployed). */
  readonly kv: Readonly<Record<string, KvNamespace>>;
  /** A durable run of a function, of this deployment or of another worker's production
   * (`worker`), after `delay` seconds; the same `idempotencyKey` again gives the same run.
   * Retried by the worker's policy, shown with its runs. */
  enqueue(
    fn: string,
    payload?: unknown,
    options?: { delay?: number; idempotencyKey?: string; worker?: string },
  ): Promise<{ runId: string; status: string }>;
  /** Sends an event to a run of this tenant (`run`), or to every run of a worker (`worker`,
   * this one by default) that waits for it now; the runs it was given to. Audited. */
  sendEvent(
    name: string,
    payload?: unknown,
    options?: { run?: string; worker?: string },
  ): Promise<{ delivered: string[] }>;
  /** Durable steps, in a run's calls (an async call, a schedule, ctx.enqueue); elsewhere they
   * throw. The function runs again from the top on every attempt and resume: a step the run
   * finished gives back its result without running. Step names are unique in a run. */
  readonly step: Steps;
}

export interface Steps {
  /** Runs `work` once per run; its JSON result is remembered. When it throws, the run is
   * retried by the worker's policy (finished steps are not run again). */
  run<T>(name: string, work: () => T | Promise<T>): Promise<T>;
  /** Parks the run (no isolate held) for a duration: ms, or "10s", "5 minutes", "3 days". */
  sleep(name: string, duration: number | string): Promise<void>;
  sleepUntil(name: string, when: Date | string | number): Promise<void>;
  /** Parks the run until an event named `name` (or `event`) is sent to it (its payload must
   * have `match`'s fields), answering its payload; null once `timeout` (7 days) has passed. */
  waitForEvent<T = unknown>(
    name: string,
    options?: { timeout?: number | string; match?: Record<string, unknown>; event?: string },
  ): Promise<T | null>;
}

/** Thrown by ctx.kv and ctx.enqueue: `code` is the platform's (rate_limited,
 * quota_exceeded, kv_binding_not_found, payload_too_large, invalid_request, ...). */
export interface BindingError extends Error {
  readonly code: string;
}

export type KvEntry<T> = { value: T; metadata: unknown; version: number; expiresAt: Date | null };

/** One namespace. Reads may be up to a second old when written through another host
 * (never older than your own writes on this host); compare-and-set always sees the latest. */
export interface KvNamespace {
  get(key: string, type?: "text"): Promise<string | null>;
  get<T = unknown>(key: string, type: "json"): Promise<T | null>;
  get(key: string, type: "bytes"): Promise<Uint8Array | null>;
  getWithMetadata(key: string, type?: "text"): Promise<KvEntry<string> | null>;
  getWithMetadata<T = unknown>(key: string, type: "json"): Promise<KvEntry<T> | null>;
  getWithMetadata(key: string, type: "bytes"): Promise<KvEntry<Uint8Array> | null>;
  /** Text is stored as UTF-8, bytes as they are, anything else as its JSON (1 MiB at most).
   * With `ifVersion`, written only if the key's version is that one now (0: only if there is
   * no such key): `ok` false, with the version there, when it is not. */
  put(
    key: string,
    value: string | ArrayBuffer | ArrayBufferView | unknown,
    options?: { ttl?: number; metadata?: unknown; ifVersion?: number },
  ): Promise<{ ok: boolean; version: number }>;
  /** Whether there was such a key. */
  delete(key: string): Promise<boolean>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{
    keys: { name: string; metadata: unknown; version: number; expiresAt: Date | null }[];
    cursor: string | null;
  }>;
}

/** An exported function: `export const hello: Handler<{ name: string }> = async (p, ctx) => …`. */
export type Handler<Payload = unknown, Result = unknown> = (
  payload: Payload,
  ctx: Context,
) => Result | Promise<Result>;

/** The default export that serves raw HTTP. */
export interface FetchHandler {
  fetch(request: Request, ctx: Context): Response | Promise<Response>;
}
