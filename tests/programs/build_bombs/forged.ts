// Prints what the startup check's report used to look like, then exits: the build must not
// take it for the check's own report.
Deno.stderr.writeSync(
  new TextEncoder().encode('\u0001{"loaded":true,"cpuMs":1,"default":"none"}\n'),
);
Deno.exit(0);

export async function hello() {
  return "never loaded";
}
