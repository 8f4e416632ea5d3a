// One invocation of the tenant's function. Retries and async calls are the platform's durable
// runs (the control plane calls again, with the run named: lib/steps.ts), as on the local
// runtime, so the call itself runs once.
import * as worker from "./worker";

export async function runFunction(fn: string, payload: unknown, ctx?: unknown): Promise<unknown> {
  // Through `any`: the tenant's signatures are theirs; this file never type-checks them.
  const exported: any = (worker as any)[fn];
  return await exported(payload, ctx);
}
