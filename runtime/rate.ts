// A tenant's invocations per minute, counted in this host process: the fallback while Redis
// (limits.ts, which counts across all hosts) cannot say. Each host process takes its share of
// the quota, in fixed one-minute windows.

export class LocalWindows {
  private windows = new Map<number, { start: number; count: number }>();

  constructor(private processes: number, private now: () => number = Date.now) {}

  /** null when the call may go on (and is counted), else the seconds until the window turns. */
  take(tenant: number, perMinute: number): number | null {
    const now = this.now();
    let window = this.windows.get(tenant);
    if (!window || now - window.start >= 60_000) {
      window = { start: now, count: 0 };
      this.windows.set(tenant, window);
    }
    if (window.count >= Math.ceil(perMinute / Math.max(1, this.processes))) {
      return Math.max(1, Math.ceil((window.start + 60_000 - now) / 1000));
    }
    window.count++;
    return null;
  }
}

/** Seconds until the next minute on the clock: when a quota counted per calendar minute
 * (limits.ts) frees up again. */
export function untilNextMinute(now: number): number {
  return Math.max(1, Math.ceil((60_000 - (now % 60_000)) / 1000));
}
