// A worker that keeps state: a counter that never loses an increment (compare-and-set), values
// with metadata and a time to live, listing by prefix, and work enqueued for later. Its
// namespace is bound as COUNTERS; typed with the platform's declarations.
import type { Context } from "@functions/context";

/** Adds one to `key`, `times` times; the last value written. */
export async function count(payload: { key?: string; times?: number }, ctx: Context) {
  const key = payload?.key ?? "hits";
  let value = 0;
  for (let i = 0; i < (payload?.times ?? 1); i++) {
    for (let tries = 1;; tries++) {
      const now = await ctx.kv.COUNTERS.getWithMetadata<number>(key, "json");
      const next = (now?.value ?? 0) + 1;
      const written = await ctx.kv.COUNTERS.put(key, next, { ifVersion: now?.version ?? 0 });
      if (written.ok) {
        value = next;
        break;
      }
      if (tries > 1000) throw new Error("the counter kept changing under us");
    }
  }
  return value;
}

export async function remember(
  payload: { key: string; value: unknown; ttl?: number; metadata?: unknown },
  ctx: Context,
) {
  return await ctx.kv.COUNTERS.put(payload.key, payload.value, { ttl: payload.ttl, metadata: payload.metadata });
}

export async function recall(payload: { key: string; type?: "text" | "json" }, ctx: Context) {
  const entry = payload.type === "json"
    ? await ctx.kv.COUNTERS.getWithMetadata(payload.key, "json")
    : await ctx.kv.COUNTERS.getWithMetadata(payload.key);
  if (!entry) return null;
  return { ...entry, expiresAt: entry.expiresAt?.toISOString() ?? null };
}

export async function forget(payload: { key: string }, ctx: Context) {
  return await ctx.kv.COUNTERS.delete(payload.key);
}

export async function keys(payload: { prefix?: string; cursor?: string; limit?: number }, ctx: Context) {
  const page = await ctx.kv.COUNTERS.list(payload ?? {});
  return { names: page.keys.map((k) => k.name), cursor: page.cursor };
}

/** What a bad operation says to the code that made it. */
export async function misuse(payload: { what: string }, ctx: Context) {
  try {
    if (payload.what === "huge") await ctx.kv.COUNTERS.put("huge", "x".repeat(1024 * 1024 + 1));
    if (payload.what === "long key") await ctx.kv.COUNTERS.get("k".repeat(513));
    if (payload.what === "unbound") await (ctx.kv as Record<string, typeof ctx.kv.COUNTERS>).OTHER.get("x");
    if (payload.what === "flood") {
      for (let i = 0; i < 100; i++) await ctx.kv.COUNTERS.put(`flood-${i}`, "v");
    }
    return "no error";
  } catch (err) {
    return { name: (err as Error).name, code: (err as { code?: string }).code ?? null, message: (err as Error).message };
  }
}

/** Bindings the deployment has. */
export function bound(_payload: unknown, ctx: Context) {
  return Object.keys(ctx.kv);
}

/** Enqueues `record` (or `fn` of `worker`) to run after `delay` seconds. */
export async function later(
  payload: { note: string; delay?: number; key?: string; fn?: string; worker?: string },
  ctx: Context,
) {
  return await ctx.enqueue(payload.fn ?? "record", { note: payload.note }, {
    delay: payload.delay,
    idempotencyKey: payload.key,
    worker: payload.worker,
  });
}

export async function record(payload: { note: string }, ctx: Context) {
  await ctx.kv.COUNTERS.put(`note:${payload.note}`, { at: Date.now() });
  return `recorded ${payload.note}`;
}

/** Writes, then reads at once: a host reads its own writes. */
export async function writeThenRead(payload: { key: string; value: string }, ctx: Context) {
  await ctx.kv.COUNTERS.put(payload.key, payload.value);
  return await ctx.kv.COUNTERS.get(payload.key);
}
