// A worker that reads its context: settings and secrets (ctx.env) and the call's id, typed
// with the platform's declarations.
import type { Context, FetchHandler } from "@functions/context";

export async function greet(payload: { name?: string }, ctx: Context) {
  console.log(`call ${ctx.requestId}`);
  return {
    greeting: `${ctx.env.GREETING ?? "Hello"}, ${payload?.name ?? "world"}!`,
    feature: ctx.env.FEATURE_X ?? null,
    token: ctx.env.API_TOKEN ? "set" : "missing",
    sameAsProcessEnv: ctx.env.GREETING === process.env.GREETING,
    requestId: ctx.requestId,
  };
}

const site: FetchHandler = {
  fetch(_request: Request, ctx: Context): Response {
    return Response.json({ feature: ctx.env.FEATURE_X ?? null, requestId: ctx.requestId });
  },
};
export default site;

export async function later(payload: { ms: number; fail?: boolean }, ctx: Context) {
  ctx.waitUntil((async () => {
    await new Promise((resolve) => setTimeout(resolve, payload.ms));
    console.log("after the answer");
    if (payload.fail) throw new Error("the flush failed");
  })());
  return "answered";
}
