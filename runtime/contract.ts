// The contract shared with the control plane and the generated Next.js project
// (contract.json): error codes with their HTTP status, header names, triggers.
import contract from "./contract.json" with { type: "json" };

export type ErrorCode = keyof typeof contract.errors;
export const HEADERS = contract.headers;
export const TRIGGERS = new Set(contract.triggers);
export const ERROR_CODES = contract.errors;

export function statusOf(code: ErrorCode): number {
  return contract.errors[code];
}

/** The fields of a deployment's configuration, as the contract names them ("config"). */
export type ConfigField = keyof typeof contract.config;

/** true when A and B are the same type (for checks that `deno check` makes). */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
