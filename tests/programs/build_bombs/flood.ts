// Writes without end to stdout and stderr at its top level: the build holds what a module
// prints while it loads in its own memory, so it must stop reading at a bound.
const chunk = new TextEncoder().encode("x".repeat(1 << 20));
for (;;) {
  Deno.stdout.writeSync(chunk);
  Deno.stderr.writeSync(chunk);
}

export async function hello() {
  return "never loaded";
}
