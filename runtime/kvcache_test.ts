import { deepStrictEqual, strictEqual } from "node:assert";
import { KvCache } from "./kvcache.ts";

const bytes = (n: number) => new Uint8Array(n);

Deno.test("an entry is served until its time here is up, then asked for again", () => {
  let now = 1_000;
  const cache = new KvCache(500, 1 << 20, () => now);
  cache.set("ns", "k", { found: true, value: bytes(3), version: 1, expiresAt: null });
  strictEqual(cache.get("ns", "k")?.version, 1);
  now += 499;
  strictEqual(cache.get("ns", "k")?.version, 1);
  now += 1;
  strictEqual(cache.get("ns", "k"), undefined);
});

Deno.test("an entry past its own expiry is never served", () => {
  let now = 1_000;
  const cache = new KvCache(60_000, 1 << 20, () => now);
  cache.set("ns", "k", { found: true, value: bytes(1), version: 1, expiresAt: 1_100 });
  strictEqual(cache.get("ns", "k")?.found, true);
  now = 1_100;
  strictEqual(cache.get("ns", "k"), undefined);
});

Deno.test("absent keys are remembered, and namespaces are apart", () => {
  const cache = new KvCache(1_000, 1 << 20);
  cache.set("a", "k", { found: false });
  deepStrictEqual(cache.get("a", "k"), { found: false });
  strictEqual(cache.get("b", "k"), undefined);
});

Deno.test("past its bytes, the least recently used entries go first", () => {
  const cache = new KvCache(60_000, 4_000);
  cache.set("ns", "a", { found: true, value: bytes(900) });
  cache.set("ns", "b", { found: true, value: bytes(900) });
  cache.set("ns", "c", { found: true, value: bytes(900) });
  cache.get("ns", "a"); // used: b is now the oldest
  cache.set("ns", "d", { found: true, value: bytes(900) });
  cache.set("ns", "e", { found: true, value: bytes(900) });
  strictEqual(cache.get("ns", "b"), undefined);
  strictEqual(cache.get("ns", "a")?.found, true);
  strictEqual(cache.get("ns", "e")?.found, true);
  // One value larger than a quarter of the cache is not kept at all.
  cache.set("ns", "big", { found: true, value: bytes(1_500) });
  strictEqual(cache.get("ns", "big"), undefined);
  strictEqual(cache.get("ns", "e")?.found, true);
});
