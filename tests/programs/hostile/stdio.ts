// The sandbox process's stdout and stderr, which take no permission to write: a message
// forged for the runtime's channel, and a flood meant for the operator's logs.
export async function flood(payload: { lines: number }) {
  const encoder = new TextEncoder();
  const forged = JSON.stringify({ t: "usage", cpuMs: 0, rss: 0, kv: [0, 0] });
  Deno.stdout.writeSync(encoder.encode(`${forged}\nstdout-flood\n`.repeat(100)));
  for (let i = 0; i < payload.lines; i++) Deno.stderr.writeSync(encoder.encode(`stderr-flood ${i}\n`));
  return { wrote: payload.lines };
}
