// ctx.step in a generated deployment: the platform's journal of the run (runs/steps.py), the
// same rules and answers as on the platform's own runtime. The run is the one the platform
// named when it called: its id comes signed with this deployment's own credential (so no
// other caller can name a run), and the journal is asked with that credential too.
// A step the journal holds as done is not run again: its result is given back. A sleep or a
// wait that is not over parks the run: the call ends ("run_parked", with when to resume) and
// the platform calls again then, from the top.
import { AsyncLocalStorage } from "node:async_hooks";
import { createHmac, timingSafeEqual } from "node:crypto";
import { ask, BindingError } from "./bindings";
import config from "./deployment.json";

const own = config as typeof config & { stepsUrl?: string };

/** What a run's call holds about its steps. */
export type Steps = {
  run: string;
  parked?: { until: number; kind: "sleep" | "wait" };
  platform?: string; // the journal could not be reached: the attempt is the platform's failure
};

/** The step (ctx.step.run) whose code is running, if any: its console lines are noted as its. */
export const inStep = new AsyncLocalStorage<{ started: number; lines: number[] }>();

/** The run id of a call the platform made for a run (`<id>.<signature>`), or null. */
export function signedRun(header: string | null): string | null {
  const [run, signature] = (header ?? "").split(".");
  if (!run || !signature) return null;
  const expected = createHmac("sha256", config.ingest.token).update(run).digest();
  const given = Buffer.from(signature, "hex");
  return given.length === expected.length && timingSafeEqual(given, expected) ? run : null;
}

const DURATION =
  /^(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

function durationMs(value: unknown): number {
  if (typeof value === "number" && value >= 0) return value;
  const found = typeof value === "string" ? DURATION.exec(value.trim()) : null;
  if (!found) {
    throw new TypeError(
      `Not a duration: ${String(value).slice(0, 40)} (a number of ms, or "10s", "5 minutes", "3 days").`,
    );
  }
  const unit = found[2].toLowerCase();
  return Number(found[1]) * UNIT_MS[unit.startsWith("ms") || unit.startsWith("milli") ? "ms" : unit[0]];
}

export class StepParked extends Error {
  constructor(until: number) {
    super(`The run is parked until ${new Date(until).toISOString()}.`);
    this.name = "StepParked";
  }
}

const notARun = () => {
  throw new TypeError(
    "ctx.step keeps its steps in a durable run: call this function as a run (Prefer: respond-async, a schedule or ctx.enqueue).",
  );
};
/** ctx.step in a call that is not a run's. */
export const noSteps = Object.freeze({ run: notARun, sleep: notARun, sleepUntil: notARun, waitForEvent: notARun });

const PLATFORM_CODES = new Set(["control_plane_unavailable", "run_not_running"]);

/** ctx.step for one call of a run. */
export function stepsFor(state: Steps, requestId: string) {
  const names = new Set<string>();
  let journal: Promise<Record<string, { status: string; result: string | null }>> | null = null;
  const step = (op: string, fields: object) =>
    ask(own.stepsUrl, { run: state.run, request: requestId, op, ...fields }).catch((err) => {
      if (err instanceof BindingError && PLATFORM_CODES.has(err.code)) state.platform = err.message;
      throw err;
    });
  const known = () => (journal ??= step("journal", {}).then((j) => j.steps));
  const named = (name: unknown) => {
    if (typeof name !== "string" || name === "") throw new TypeError("A step needs a name.");
    if (names.has(name)) throw new Error(`Step names are unique in a run: "${name}" came twice.`);
    names.add(name);
    return name;
  };
  const park = (until: number, kind: "sleep" | "wait"): never => {
    state.parked = { until, kind };
    throw new StepParked(until);
  };
  const sleepUntil = async (name: string, until: number) => {
    named(name);
    if ((await known())[name]?.status === "done") return;
    const answer = await step("sleep", { name, until });
    if (!answer.done) park(answer.parked, "sleep");
  };
  return Object.freeze({
    async run(name: string, work: () => unknown) {
      named(name);
      const kept = (await known())[name];
      if (kept?.status === "done") return JSON.parse(kept.result ?? "null");
      const tried = { started: Date.now(), lines: [] as number[] };
      let value: unknown;
      try {
        value = await inStep.run(tried, work);
      } catch (err) {
        if (!state.parked) {
          const error = err instanceof Error ? err.message : String(err);
          await step("failed", { name, error, ...tried }).catch(() => {});
        }
        throw err;
      }
      const text = JSON.stringify(value === undefined ? null : value);
      if (text === undefined) throw new TypeError(`Step "${name}" returned something that is not JSON.`);
      return JSON.parse((await step("done", { name, result: text, ...tried })).result); // the first kept wins
    },
    sleep: (name: string, duration: unknown) => sleepUntil(name, Date.now() + durationMs(duration)),
    sleepUntil: (name: string, date: Date | number | string) => sleepUntil(name, new Date(date).getTime()),
    async waitForEvent(name: string, options?: { timeout?: unknown; match?: object; event?: string }) {
      named(name);
      const { timeout, match, event } = options ?? {};
      const kept = (await known())[name];
      if (kept?.status === "done") return JSON.parse(kept.result ?? "null");
      const until = Date.now() + durationMs(timeout ?? "7 days");
      const answer = await step("wait", { name, event: event ?? name, until, match: match ?? null });
      if (answer.done) return JSON.parse(answer.result ?? "null");
      park(answer.parked, "wait");
    },
  });
}
