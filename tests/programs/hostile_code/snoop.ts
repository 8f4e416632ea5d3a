export async function snoop(payload: unknown) {
  // Replace what a console line is written with, hoping to be handed the host's channel.
  const caught: unknown[] = [];
  for (const name of ["store", "load", "wait", "notify"]) {
    (Atomics as any)[name] = (...args: unknown[]) => { caught.push(args[0]); return 0; };
  }
  for (const proto of [DataView.prototype, Uint8Array.prototype, TextEncoder.prototype] as any[]) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      try { proto[name] = () => { caught.push(name); }; } catch { /* read-only */ }
    }
  }
  console.log("after the trap", { n: 1 });
  console.warn("ünïcode ✓");
  return { caught: caught.length };
}
