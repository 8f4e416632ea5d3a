// The ids the runtime gives calls and lines, in the form the contract names
// (contract.json "requestIdPattern": the control plane looks a whole id up by its index).
import contract from "./contract.json" with { type: "json" };

export const REQUEST_ID = new RegExp(contract.requestIdPattern);

const HEX = Array.from({ length: 256 }, (_, n) => n.toString(16).padStart(2, "0"));

// Random bytes fetched 4,000 at a time: one call into the system's generator per 400 ids
// instead of one per id (0.4 us per id instead of 0.8-1.1 in a loop of 500,000).
const RANDOM = new Uint8Array(4000);
let used = RANDOM.length;

/** A call's id: `req_`, the time in milliseconds (12 hex), 80 random bits (20 hex). */
export function newRequestId(now = Date.now()): string {
  // 80 random bits, never a counter: a tenant who sees its own ids must not predict anyone
  // else's. Led by the time in milliseconds: ids stored one after another then sit side by
  // side in the database's indexes on them, where random ones put every new key on a random
  // page of an index as large as the day's calls (bench/ingest.py).
  if (used === RANDOM.length) {
    crypto.getRandomValues(RANDOM);
    used = 0;
  }
  let id = `req_${now.toString(16).padStart(12, "0")}`;
  for (let i = used; i < used + 10; i++) id += HEX[RANDOM[i]];
  used += 10;
  return id;
}

/** The id of an isolate's lines printed outside any call. */
export function newIsolateLinesId(): string {
  return `iso_${crypto.randomUUID().replaceAll("-", "")}`;
}
