import { rejects, strictEqual } from "node:assert/strict";
import { check, isPrivateAddress, policy, Refused } from "./egress.ts";

// A resolver with fixed answers: no network in unit tests.
const names: Record<string, string[]> = {
  "example.com": ["93.184.215.14"],
  "inward.example": ["10.0.0.5"],
  "metadata.example": ["169.254.169.254"],
  "v6-inward.example": ["fd00::1"],
};
const resolve = (host: string, type: "A" | "AAAA") =>
  Promise.resolve((names[host] ?? []).filter((a) => (type === "A") === !a.includes(":")));
const open = policy("", "", resolve);

Deno.test("loopback, private, link-local, shared, reserved and mapped addresses are private", () => {
  for (
    const address of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "::1",
      "::",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "64:ff9b::a00:1",
      "fe80::1",
      "fc00::1",
      "2001:db8::1",
      "not-an-address",
    ]
  ) strictEqual(isPrivateAddress(address), true, address);
  for (const address of ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]) {
    strictEqual(isPrivateAddress(address), false, address);
  }
});

Deno.test("a public name is let through", async () => {
  await check(new URL("https://example.com/x"), open);
});

Deno.test("a public name that resolves inward is refused, naming the address", async () => {
  await rejects(check(new URL("http://inward.example/"), open), (err: Error) => {
    strictEqual(err instanceof Refused, true);
    strictEqual(err.message.includes("inward.example is 10.0.0.5"), true, err.message);
    return true;
  });
  await rejects(check(new URL("http://metadata.example/"), open), Refused);
  await rejects(check(new URL("http://v6-inward.example/"), open), Refused);
  await rejects(check(new URL("http://[::1]:8000/"), open), Refused);
});

Deno.test("other schemes and names that do not resolve are refused", async () => {
  await rejects(check(new URL("file:///etc/passwd"), open), /only http and https/);
  await rejects(check(new URL("http://nowhere.example/"), open), /does not resolve/);
});

Deno.test("the deny list wins; a domain entry covers its subdomains", async () => {
  const deny = policy("", ".example.com,93.184.215.14", resolve);
  await rejects(check(new URL("https://api.example.com/"), deny), /deny list/);
  await rejects(check(new URL("https://example.com/"), deny), /deny list/);
});

Deno.test("with an allow list only its entries are reachable, private ones too", async () => {
  const allow = policy("inward.example,api.internal:8080", "", resolve);
  await check(new URL("http://inward.example/"), allow);
  await check(new URL("http://api.internal:8080/"), allow);
  await rejects(check(new URL("https://example.com/"), allow), /not on the operator's allow list/);
});
