import type { Context } from "@functions/context";
import ms from "npm:ms@2.1.3";
import isOdd from "npm:is-odd@3.0.1";
import { page, refuse } from "./lib/page.ts";

type Pair = { a: number; b: number };

export async function wait(payload: { text: string }) {
  return { ms: ms(payload.text) };
}

// A package with one of its own below it (is-number): installed as the lockfile pinned it.
export async function odd(payload: { n: number }) {
  return { odd: isOdd(payload.n) };
}

export async function add(payload: Pair): Promise<{ sum: number }> {
  console.log("adding", payload.a, payload.b);
  await new Promise((resolve) => setTimeout(resolve, 50));
  console.warn({ checked: true });
  return { sum: payload.a + payload.b };
}

export async function boom(payload: unknown) {
  console.error("about to fail");
  refuse("bad input");
}

export async function big() {
  return "x".repeat(20_000);
}

export async function environment() {
  // What tenant code sees: its own secrets, none of the platform's.
  return Object.keys(process.env).filter((name) => /SECRET|TOKEN|KEY|DATABASE|REDIS/.test(name)).sort();
}

export async function secret() {
  return { value: process.env.API_SECRET ?? null };
}

/** The platform's state, as on its own runtime: a counter by compare-and-set, a value with
 * metadata read back, and a run enqueued for later. */
export async function tally(payload: { times: number }, ctx: Context) {
  let value = 0;
  for (let i = 0; i < payload.times; i++) {
    for (;;) {
      const now = await ctx.kv.COUNTS.getWithMetadata<number>("n", "json");
      value = (now?.value ?? 0) + 1;
      if ((await ctx.kv.COUNTS.put("n", value, { ifVersion: now?.version ?? 0 })).ok) break;
    }
  }
  await ctx.kv.COUNTS.put("note", "kept", { metadata: { by: "tally" }, ttl: 60 });
  const note = await ctx.kv.COUNTS.getWithMetadata("note");
  const listed = await ctx.kv.COUNTS.list({ prefix: "n" });
  const run = await ctx.enqueue("add", { a: 1, b: 1 }, { delay: 5, idempotencyKey: "tally" });
  let refused = "";
  try {
    await ctx.kv.COUNTS.put("huge", "x".repeat(1024 * 1024 + 1));
  } catch (err) {
    refused = (err as Error).name;
  }
  return { value, note: [note?.value, note?.metadata], keys: listed.keys.map((k) => k.name), runId: run.runId, refused };
}

/** A durable run in steps, as on the platform's own runtime: a charge that runs once (counted
 * in the namespace), a short sleep, a wait for an approval matched on the order. */
export async function journey(p: { order: string }, ctx: Context) {
  console.log(`journey ${p.order}`); // outside the steps: printed on every attempt
  const charged = await ctx.step.run("charge", async () => {
    console.log(`charging ${p.order}`);
    const n = ((await ctx.kv.COUNTS.get<number>(`charges:${p.order}`, "json")) ?? 0) + 1;
    await ctx.kv.COUNTS.put(`charges:${p.order}`, n);
    return { charge: `ch_${p.order}` };
  });
  await ctx.step.sleep("cool-off", "1s");
  const approval = await ctx.step.waitForEvent<{ by: string }>("approved", {
    timeout: "1 minute",
    match: { order: p.order },
  });
  return { charged, approvedBy: approval?.by ?? null };
}

export async function slow() {
  console.log("before the wait");
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  return "late";
}

// A call to another production address of the tenant (its own worker's here), as a chain of
// workers makes it: the platform sends it to that release's deployment.
// (Twice: the second fetch goes where the first went, within the call's release.)
export async function peer(p: { url: string; secret: string }) {
  const call = () =>
    fetch(p.url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-invoke-secret": p.secret },
      body: JSON.stringify({ a: 1, b: 2 }),
    });
  const res = await call();
  const again = await call();
  return { status: res.status, result: (await res.json()).result ?? null, again: again.status };
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    console.log(`${request.method} ${url.pathname}`);
    if (request.method === "POST") return new Response(`got ${(await request.text()).length} bytes`);
    return new Response(page(url.pathname), { headers: { "content-type": "text/html" } });
  },
};
