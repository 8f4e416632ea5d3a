// Work V8 cannot interrupt once it has started: a backtracking regular expression and a long
// synchronous key derivation. Terminating the isolate's thread does not stop either.
import { pbkdf2Sync } from "node:crypto";

export async function regex(payload: { n: number }) {
  console.log("matching");
  return /^(a+)+$/.test("a".repeat(payload.n) + "!");
}

export async function derive(payload: { iterations: number }) {
  console.log("deriving");
  return pbkdf2Sync("password", "salt", payload.iterations, 64, "sha512").length;
}

export async function echo(payload: unknown) {
  return payload;
}
