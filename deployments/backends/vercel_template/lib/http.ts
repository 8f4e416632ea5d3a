// Raw HTTP: every path but /api/invoke/* goes to the tenant's fetch handler (the default
// export's fetch), with the same door as functions (invoke.ts: admit), limits, console capture and invocation records; the body streams out as written.
import { randomUUID } from "node:crypto";
import { after } from "next/server";
import config from "./deployment.json";
import {
  admit, type Call, calls, coldStart, contextFor, describe, failure, finish, HEADERS, secretsReady, takeLease, Timeout,
  triggerOf,
} from "./invoke";
import { pinOf } from "./peers";
import * as worker from "./worker";

type Handler = { fetch: (request: Request, ctx: unknown) => Response | Promise<Response> };

export async function handleHttp(request: Request): Promise<Response> {
  const { refused, platform } = await admit(request);
  if (refused) return refused;
  if (!(await secretsReady())) {
    return failure("isolate_unavailable", "This deployment's secrets could not be fetched from the platform; retry.");
  }
  const handler = (worker as { default?: Handler }).default;
  if (!(config as { http?: boolean }).http || typeof handler?.fetch !== "function") {
    return failure("not_found",
      `This deployment has no fetch handler, so only its functions answer: POST /api/invoke/<function> (${config.functions.join(", ")}).`);
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > config.maxBodyBytes) {
    return failure("payload_too_large", `The request body is larger than ${config.maxBodyBytes} bytes.`);
  }
  const bodyless = request.method === "GET" || request.method === "HEAD";
  const body = bodyless ? null : await request.arrayBuffer();
  if (body && body.byteLength > config.maxBodyBytes) {
    return failure("payload_too_large", `The request body is larger than ${config.maxBodyBytes} bytes.`);
  }
  const headers = new Headers(request.headers);
  for (const name of [HEADERS.invokeSecret, HEADERS.trigger, HEADERS.run, HEADERS.generation]) headers.delete(name); // the platform's
  if (/^Bearer wk_/.test(headers.get("authorization") ?? "")) headers.delete("authorization");
  const inner = new Request(request.url, { method: request.method, headers, body });

  const requestId = `req_${randomUUID().replaceAll("-", "")}`;
  const call: Call = { requestId, fn: "fetch", seq: 0, lines: [], dropped: 0, pending: [], pin: pinOf(request) };
  const over = await takeLease(call);
  if (over) return over;
  const cold = coldStart();
  const startedAt = new Date();
  const t0 = performance.now();
  let response: Response | null = null;
  let error: { message: string; stack: string } | null = null;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout()), config.timeoutMs);
    });
    const answer = await calls.run(call, () => Promise.race([Promise.resolve(handler.fetch(inner, contextFor(call))), deadline]));
    if (!(answer instanceof Response)) throw new TypeError("The fetch handler must return a Response.");
    response = answer;
  } catch (err) {
    timedOut = err instanceof Timeout;
    error = timedOut
      ? { message: `The function did not finish within ${config.timeoutMs} ms and was stopped.`, stack: "" }
      : describe(err);
  } finally {
    clearTimeout(timer);
  }
  const status = response ? response.status : timedOut ? 504 : 500;
  const invocation = {
    requestId, deploymentId: config.id, function: "fetch", trigger: triggerOf(request, platform), cold,
    status: response ? "ok" : status === 504 ? "timeout" : "error",
    statusCode: status, durationMs: Math.round((performance.now() - t0) * 100) / 100,
    startedAt: startedAt.toISOString(), errorMessage: error?.message ?? "",
  };
  after(() => finish(call, [invocation]));
  if (!response) {
    const code = status === 504 ? "timeout" : "function_error";
    return new Response(JSON.stringify({ error: { code, message: error!.message, stack: error!.stack }, requestId }), {
      status, headers: { "content-type": "application/json", [HEADERS.requestId]: requestId },
    });
  }
  const out = new Headers(response.headers);
  out.set(HEADERS.requestId, requestId);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: out });
}
