import { match, ok, strictEqual } from "node:assert/strict";
import { newIsolateLinesId, newRequestId, REQUEST_ID } from "./ids.ts";

Deno.test("ids have the contract's form, which the control plane looks up whole", () => {
  for (let i = 0; i < 1000; i++) {
    match(newRequestId(), REQUEST_ID);
    match(newIsolateLinesId(), REQUEST_ID);
  }
  ok(!REQUEST_ID.test("req_123"));
  ok(!REQUEST_ID.test(newRequestId() + "0"));
});

Deno.test("call ids are led by the time and never repeat", () => {
  const earlier = newRequestId(Date.UTC(2026, 0, 1));
  const later = newRequestId(Date.UTC(2026, 0, 1) + 1);
  ok(earlier < later, `${earlier} sorts before ${later}`);
  const many = new Set(Array.from({ length: 10000 }, () => newRequestId(Date.UTC(2026, 0, 1))));
  strictEqual(many.size, 10000);
});
