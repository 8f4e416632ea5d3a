// One invocation of the tenant's function. As a "use step" it is retried when it fails
// inside a workflow run (lib/workflow.ts); called directly it runs once, like a plain call.
import * as worker from "./worker";

export async function runFunction(fn: string, payload: unknown, ctx?: unknown): Promise<unknown> {
  "use step";
  // Through `any`: the tenant's signatures are theirs; this file never type-checks them.
  const exported: any = (worker as any)[fn];
  return await exported(payload, ctx);
}
