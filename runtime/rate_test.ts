import { strictEqual } from "node:assert/strict";
import { LocalWindows, untilNextMinute } from "./rate.ts";
import { enterSlot, takeCall } from "./limits.ts";

Deno.test("each host process takes its share of the tenant's quota per minute", () => {
  let now = 1_000_000;
  const windows = new LocalWindows(2, () => now);
  for (let i = 0; i < 5; i++) strictEqual(windows.take(7, 10), null); // 10 a minute over 2 processes
  strictEqual(windows.take(7, 10), 60);
  now += 45_000;
  strictEqual(windows.take(7, 10), 15); // the seconds left in its window
  strictEqual(windows.take(8, 10), null); // another tenant has its own
  now += 15_000;
  strictEqual(windows.take(7, 10), null); // a new window
});

Deno.test("a quota counted per clock minute frees up at the next minute", () => {
  strictEqual(untilNextMinute(120_000), 60);
  strictEqual(untilNextMinute(179_500), 1);
  strictEqual(untilNextMinute(150_000), 30);
});

Deno.test("without Redis the shared counts cannot say, so the host counts on its own", () => {
  strictEqual(takeCall(7, 10), null);
  strictEqual(enterSlot("d1", 1), null);
});
