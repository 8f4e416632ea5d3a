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
