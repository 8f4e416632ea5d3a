// A durable run in steps: charge a card once, cool off, wait for an approval (matched on the
// order), then send a mail that fails the first time. A retry does not charge again. Counts
// are kept in the worker's namespace (bound as COUNTERS) so a test can see what ran.
import type { Context } from "@functions/context";

async function bump(ctx: Context, key: string): Promise<number> {
  const n = ((await ctx.kv.COUNTERS.get<number>(key, "json")) ?? 0) + 1;
  await ctx.kv.COUNTERS.put(key, n);
  return n;
}

export async function checkout(p: { order: string; coolOff?: string }, ctx: Context) {
  console.log(`checkout ${p.order}`); // outside the steps: printed on every attempt
  const charged = await ctx.step.run("charge", async () => {
    console.log(`charging ${p.order}`); // the step's own line
    await bump(ctx, `charges:${p.order}`);
    return { charge: `ch_${p.order}` };
  });
  await ctx.step.sleep("cool-off", p.coolOff ?? "2s");
  const approval = await ctx.step.waitForEvent<{ by: string }>("approved", {
    timeout: "1 minute",
    match: { order: p.order },
  });
  const mailed = await ctx.step.run("mail", async () => {
    const tries = await bump(ctx, `mails:${p.order}`);
    console.log(`mailing, try ${tries}`);
    if (tries < 2) throw new Error("the mail server is down");
    return { tries };
  });
  return { charged, approvedBy: approval?.by ?? null, mailed };
}

/** A wait nobody answers: null once its timeout has passed. */
export async function unanswered(_p: unknown, ctx: Context) {
  return { answer: await ctx.step.waitForEvent("never", { timeout: "2s" }) };
}

/** Steps outside a run, and the same name twice. */
export async function misuse(p: { what: string }, ctx: Context) {
  try {
    if (p.what === "twice") {
      await ctx.step.run("a", () => 1);
      await ctx.step.run("a", () => 2);
    } else await ctx.step.run("a", () => 1);
    return "no error";
  } catch (err) {
    return (err as Error).message;
  }
}

/** Two steps, the second slow: a host killed during it runs it again, never the first. */
export async function twoSteps(p: { ms: number }, ctx: Context) {
  await ctx.step.run("first", () => bump(ctx, "first"));
  await ctx.step.run("second", async () => {
    await bump(ctx, "second");
    await new Promise((resolve) => setTimeout(resolve, p.ms));
  });
  return "both";
}

/** A sleep, then an answer. */
export async function nap(p: { for: string }, ctx: Context) {
  await ctx.step.sleep("nap", p.for);
  return "rested";
}

/** An approval sent from code (a plain call): to one run, or to the worker's waiting runs. */
export async function approve(p: { run?: string; order: string; by: string }, ctx: Context) {
  try {
    return await ctx.sendEvent("approved", { order: p.order, by: p.by }, { run: p.run });
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
}

/** A step that always throws: the run's dead letter names it. */
export async function flaky(_p: unknown, ctx: Context) {
  await ctx.step.run("steady", () => "fine");
  await ctx.step.run("flaky", () => {
    throw new Error("the bank said no");
  });
}
