// Run with `deno test` (or `.venv/bin/deno test` next to the platform).
import { hello } from "./index.ts";

Deno.test("hello greets by name", async () => {
  const answer = await hello({ name: "you" });
  if (answer.greeting !== "Hello, you!") throw new Error(`unexpected: ${answer.greeting}`);
});
