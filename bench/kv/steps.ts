// The durable steps benchmark's worker: a run of `n` steps that return at once, each timed in
// the isolate, and the same loop without steps (the baseline).
type Steps = { run<T>(name: string, work: () => T | Promise<T>): Promise<T> };
type Ctx = { step: Steps };

export async function steps(p: { n: number }, ctx: Ctx) {
  const ms: number[] = [];
  for (let i = 0; i < p.n; i++) {
    const t = performance.now();
    await ctx.step.run(`s${i}`, () => i);
    ms.push(performance.now() - t);
  }
  return ms;
}

export async function plain(p: { n: number }) {
  const ms: number[] = [];
  for (let i = 0; i < p.n; i++) {
    const t = performance.now();
    await (async () => i)();
    ms.push(performance.now() - t);
  }
  return ms;
}
