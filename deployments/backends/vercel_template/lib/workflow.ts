// Asynchronous invocations (?async=1): a workflow run whose one step is retried on failure.
import { runFunction } from "./step";

export async function invokeWithRetries(fn: string, payload: unknown): Promise<unknown> {
  "use workflow";
  return await runFunction(fn, payload);
}
