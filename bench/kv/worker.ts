// The key-value benchmark's worker: each function times its own operations (performance.now
// around each await), so the numbers are what tenant code waits, not HTTP around it.
type Kv = {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<unknown>;
};
type Ctx = { kv: Record<string, Kv> };

async function timed(n: number, op: (i: number) => Promise<unknown>) {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    ms.push(performance.now() - t);
  }
  return ms;
}

/** The same key again and again: all but the first from the sandbox's cache. */
export async function cachedGets(p: { n: number }, ctx: Ctx) {
  await ctx.kv.BENCH.put("hot", "x".repeat(100));
  return await timed(p.n, () => ctx.kv.BENCH.get("hot"));
}

/** Keys never read before: each one asked of the control plane. */
export async function uncachedGets(p: { n: number; round: number }, ctx: Ctx) {
  return await timed(p.n, (i) => ctx.kv.BENCH.get(`cold:${p.round}:${i}`));
}

export async function puts(p: { n: number; round: number }, ctx: Ctx) {
  return await timed(p.n, (i) => ctx.kv.BENCH.put(`put:${p.round}:${i}`, "x".repeat(100)));
}

/** The baseline: the same loop over an in-memory Map in the isolate (no platform at all). */
const map = new Map<string, string>([["hot", "x".repeat(100)]]);
export async function mapGets(p: { n: number }) {
  return await timed(p.n, async () => map.get("hot"));
}
