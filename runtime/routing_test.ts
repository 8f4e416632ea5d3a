import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { HEADERS } from "./contract.ts";
import {
  bucket,
  deploymentPart,
  domainRoute,
  isProductionHost,
  mayBeDomain,
  pathOf,
  route,
  takesCanary,
} from "./routing.ts";

Deno.test("the path of a URL, without its query", () => {
  strictEqual(pathOf("http://a.localhost:8787/api/invoke/hello?async=1"), "/api/invoke/hello");
  strictEqual(pathOf("http://a.localhost:8787"), "/");
});

Deno.test("a host is named by subdomain or by /d/<host>/, lower-cased", () => {
  deepStrictEqual(route("/api/invoke/f", "Hello--Acme.localhost", "localhost"), {
    host: "hello--acme",
    path: "/api/invoke/f",
  });
  deepStrictEqual(route("/d/Hello--ab12--acme/x/y", "127.0.0.1", "localhost"), {
    host: "hello--ab12--acme",
    path: "/x/y",
  });
  deepStrictEqual(route("/d/hello--acme", "127.0.0.1", "localhost"), { host: "hello--acme", path: "/" });
  deepStrictEqual(route("/healthz", "127.0.0.1", "localhost"), { host: null, path: "/healthz" });
  // A name that only ends like the domain is not under it.
  deepStrictEqual(route("/", "evillocalhost", "localhost"), { host: null, path: "/" });
});

Deno.test("production hosts and deployment hosts are told apart", () => {
  ok(isProductionHost("hello--acme"));
  ok(!isProductionHost("hello--ab12--acme"));
  strictEqual(deploymentPart("hello--ab12--acme"), "ab12");
});

Deno.test("a client that names itself always lands on the same side of a canary", () => {
  const headers = new Headers({ [HEADERS.clientId]: "client-7" });
  const first = takesCanary(headers, "hello--acme", 50, () => 0);
  for (let i = 0; i < 20; i++) strictEqual(takesCanary(headers, "hello--acme", 50, Math.random), first);
  strictEqual(first, bucket("hello--acme|client-7") < 50);
  // Its API key names it when it sends no client id.
  const keyed = new Headers({ authorization: "Bearer wk_ab12_secret" });
  strictEqual(takesCanary(keyed, "hello--acme", 50, () => 0.99), bucket("hello--acme|wk_ab12") < 50);
});

Deno.test("anonymous calls split by the canary's share", () => {
  let n = 0;
  const rolls = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95];
  const random = () => rolls[n++ % rolls.length];
  const taken = rolls.filter(() => takesCanary(new Headers(), "hello--acme", 30, random)).length;
  strictEqual(taken, 3);
  strictEqual(takesCanary(new Headers(), "hello--acme", 0, () => 0), false);
  strictEqual(takesCanary(new Headers(), "hello--acme", 100, () => 0.999), true);
});

Deno.test("buckets spread clients evenly", () => {
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) counts[Math.floor(bucket(`h|client-${i}`) / 10)]++;
  for (const count of counts) ok(count > 850 && count < 1150, String(counts));
});

Deno.test("a tenant's domain: the longest prefix a path starts with serves it", () => {
  const routes = [{ prefix: "/api/v2/", host: "v2--acme" }, { prefix: "/api/", host: "api--acme" }, {
    prefix: "/",
    host: "site--acme",
  }];
  strictEqual(domainRoute(routes, "/api/v2/users"), "v2--acme");
  strictEqual(domainRoute(routes, "/api/invoke/hello"), "api--acme");
  strictEqual(domainRoute(routes, "/api"), "api--acme");
  strictEqual(domainRoute(routes, "/apiary"), "site--acme"); // a prefix is whole path segments
  strictEqual(domainRoute(routes.slice(0, 2), "/"), null);
  ok(mayBeDomain("api.customer.test"));
  ok(!mayBeDomain("127.0.0.1") && !mayBeDomain("localhost") && !mayBeDomain("[::1]"));
});
