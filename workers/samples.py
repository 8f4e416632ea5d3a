"""The sample worker new tenants start from (the new-worker form, `manage.py demo`)."""

SAMPLE_SOURCE = """\
// Every exported function can be invoked with POST <url>/api/invoke/<name> and a JSON body.
// npm packages are imported as npm:name@version (pinned when the worker is built), Node's
// built-ins as node:name, and your own files as ./file.ts.
import ms from "npm:ms@2.1.3";

export async function hello(payload: { name?: string }) {
  console.log("hello called with", payload);
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}

export async function add(payload: { a: number; b: number }) {
  console.info(`adding ${payload.a} and ${payload.b}`);
  return payload.a + payload.b;
}

export async function duration(payload: { text: string }) {
  return { milliseconds: ms(payload.text) }; // "2 days" -> 172800000
}

// Every other path of the worker's URL is served by this fetch handler: a Request in, any
// Response out (HTML, redirects, webhooks that check a signature over the raw body).
export default {
  fetch(request: Request): Response {
    const { pathname } = new URL(request.url);
    const page = `<!doctype html><title>Hello</title><h1>Hello from ${pathname}</h1>`;
    return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
  },
};
"""
