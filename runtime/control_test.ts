import { deepStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { ControlPlane, type Resolved } from "./control.ts";

type Route = (url: URL) => Response | Promise<Response>;

/** A control plane answering `route`, counting requests; the clock is the test's. */
function plane(route: Route) {
  let now = 0;
  const asked: string[] = [];
  const control = new ControlPlane({
    url: "http://control.test/",
    token: "t0ken",
    now: () => now,
    fetch: ((input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      asked.push(url.pathname + url.search);
      strictEqual(new Headers(init?.headers).get("authorization"), "Bearer t0ken");
      return Promise.resolve(route(url));
    }) as typeof fetch,
  });
  return { control, asked, advance: (ms: number) => (now += ms) };
}

const config = (extra: Record<string, unknown> = {}) =>
  Response.json({ id: "d1", host: "hello--ab12--acme", tenant: 7, artifact: "sha1", functions: ["hello"], ...extra });

const settle = (v: Resolved | Promise<Resolved>) => Promise.resolve(v);

Deno.test("a host's answer is kept for a while, then asked again", async () => {
  const { control, asked, advance } = plane(() => config());
  strictEqual((await settle(control.resolve("hello--ab12--acme"))).config?.id, "d1");
  const cached = control.resolve("hello--ab12--acme");
  strictEqual(cached instanceof Promise, false); // no await on the warm path
  advance(2_001);
  await settle(control.resolve("hello--ab12--acme"));
  deepStrictEqual(asked, ["/internal/runtime/hosts/hello--ab12--acme", "/internal/runtime/hosts/hello--ab12--acme"]);
});

Deno.test("a production URL's answer is trusted for less time: it moves with each deploy", async () => {
  const { control, asked, advance } = plane(() => config({ alias: true }));
  await settle(control.resolve("hello--acme"));
  advance(1_001);
  await settle(control.resolve("hello--acme"));
  strictEqual(asked.length, 2);
});

Deno.test("calls that arrive together share one question", async () => {
  const { control, asked } = plane(() => config());
  await Promise.all([1, 2, 3].map(() => settle(control.resolve("hello--ab12--acme"))));
  strictEqual(asked.length, 1);
});

Deno.test("while the control plane is down, what was known keeps serving", async () => {
  let down = false;
  const { control, advance } = plane(() => (down ? new Response("", { status: 502 }) : config()));
  await settle(control.resolve("hello--ab12--acme"));
  down = true;
  advance(60_000);
  strictEqual((await settle(control.resolve("hello--ab12--acme"))).config?.id, "d1");
  await rejects(settle(control.resolve("never--seen--acme")), /control plane answered 502/);
});

Deno.test("an unknown host's 404 is kept briefly too, with its reason", async () => {
  const { control, asked, advance } = plane(() =>
    Response.json({ error: { code: "deployment_not_found", message: "No such deployment." } }, { status: 404 })
  );
  deepStrictEqual(await settle(control.resolve("gone--acme")), {
    status: 404,
    error: { code: "deployment_not_found", message: "No such deployment." },
  });
  await settle(control.resolve("gone--acme"));
  strictEqual(asked.length, 1);
  advance(1_001);
  await settle(control.resolve("gone--acme"));
  strictEqual(asked.length, 2);
});

Deno.test("code that comes with the answer is kept; the next question says it is held", async () => {
  const { control, asked, advance } = plane((url) =>
    url.searchParams.get("have") === "sha1" ? config() : config({ code: "export const x = 1;" })
  );
  await settle(control.resolve("hello--ab12--acme"));
  strictEqual(await control.loadCode("sha1"), "export const x = 1;");
  advance(5_000);
  await settle(control.resolve("hello--ab12--acme"));
  deepStrictEqual(asked, [
    "/internal/runtime/hosts/hello--ab12--acme",
    "/internal/runtime/hosts/hello--ab12--acme?have=sha1",
  ]);
});

Deno.test("a call within a release generation asks for the production of that generation", async () => {
  const { control, asked } = plane(() => config({ generation: 3 }));
  await settle(control.resolve("hello--acme", { tenant: 7, generation: 3, depth: 1 }));
  deepStrictEqual(asked, ["/internal/runtime/hosts/hello--acme?generation=3&tenant=7"]);
  // A deployment's own host is the same in every generation.
  await settle(control.resolve("hello--ab12--acme", { tenant: 7, generation: 3, depth: 1 }));
  strictEqual(asked[1], "/internal/runtime/hosts/hello--ab12--acme");
});

Deno.test("keys: an unknown one is null (kept briefly), a failing control plane an error", async () => {
  let status = 404;
  const { control, asked, advance } = plane(() => new Response("{}", { status }));
  strictEqual(await control.key("ab12"), null);
  strictEqual(await control.key("ab12"), null);
  strictEqual(asked.length, 1);
  status = 500;
  advance(2_001);
  await rejects(control.key("ab12"), /control plane answered 500/);
});

Deno.test("a tenant's domain: its routes are kept briefly, an unknown name too, and known ones serve while the control plane is down", async () => {
  let down = false;
  const { control, asked, advance } = plane((url) => {
    if (down) throw new Error("connection refused");
    return url.pathname.endsWith("/api.customer.test")
      ? Response.json({ portal: false, routes: [{ prefix: "/", host: "site--acme" }] })
      : Response.json({ error: { code: "not_found", message: "?" } }, { status: 404 });
  });
  const served = { portal: false, routes: [{ prefix: "/", host: "site--acme" }] };
  deepStrictEqual(await control.domain("api.customer.test"), served);
  strictEqual(await control.domain("nobody.test"), null);
  strictEqual(control.domain("api.customer.test") instanceof Promise, false);
  strictEqual(control.domain("nobody.test"), null);
  strictEqual(asked.length, 2);
  advance(2_001);
  down = true;
  deepStrictEqual(await control.domain("api.customer.test"), served);
  await rejects(Promise.resolve(control.domain("new.customer.test")));
});
