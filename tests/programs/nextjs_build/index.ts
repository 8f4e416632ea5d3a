import ms from "npm:ms@2.1.3";
import { page, refuse } from "./lib/page.ts";

type Pair = { a: number; b: number };

export async function wait(payload: { text: string }) {
  return { ms: ms(payload.text) };
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

export async function slow() {
  console.log("before the wait");
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  return "late";
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    console.log(`${request.method} ${url.pathname}`);
    if (request.method === "POST") return new Response(`got ${(await request.text()).length} bytes`);
    return new Response(page(url.pathname), { headers: { "content-type": "text/html" } });
  },
};
