// `make bench`: a tenant's sandbox process (runtime/cell.ts) alone, with no host, HTTP or
// control plane: driven over its real channel (runtime/wire.ts) with 1, 4 and 32 calls in
// flight, against a relay of the same shape doing none of the platform's work
// (bench/floors/relay.ts). Prints CPU per call, all the process's threads and its main thread
// alone, and calls per second; three rounds alternated, medians.
//   deno run -A bench/sandbox.ts   (BENCH_SANDBOX_CALLS: calls measured per run, default 20000)
import {
  listenForSandbox,
  type Message,
  readMessages,
  Writer,
} from "../runtime/wire.ts";

const RUNTIME = new URL("../runtime/", import.meta.url).pathname;
const CALLS = Number(Deno.env.get("BENCH_SANDBOX_CALLS") ?? "20000");
const WARM = 2_000;
const ROUNDS = 3;
// The function of bench/baseline.ts, as a deployment's bundle: it prints one line per call.
const CODE = `export async function hello(payload) {
  console.log("hello called");
  return { greeting: \`Hello, \${payload?.name ?? "world"}!\` };
}`;
const CONFIG = {
  id: "bench",
  tenant: 1,
  public: true,
  host: "bench",
  functions: ["hello"],
  http: false,
  artifact: "bench",
  timeoutMs: 30_000,
  cpuMs: 30_000,
  maxBodyBytes: 1_000_000,
  invocationsPerMinute: 1e9,
  maxLogLines: 100,
  maxLineBytes: 4096,
  maxConcurrency: 1_000,
  maxResultBytes: 1_000_000,
  memoryMb: 128,
  env: {},
  kv: {},
};

const SERVERS: Record<string, string[]> = {
  // As `manage.py runtime` starts it, without confine.py (no cgroups to make here).
  sandbox: [
    "run",
    "--quiet",
    "--unstable-worker-options",
    "--allow-net",
    "--allow-env",
    `--allow-read=${RUNTIME}`,
    "--no-prompt",
    "--no-config",
    "--no-lock",
    `${RUNTIME}cell.ts`,
  ],
  relay: [
    "run",
    "--quiet",
    "--allow-env",
    "--allow-net",
    "--allow-read",
    "--no-config",
    "--no-lock",
    new URL("./floors/relay.ts", import.meta.url).pathname,
  ],
};

/** CPU time (ms) of every thread of `pid`, and of its main thread. */
function cpu(pid: number): { all: number; main: number } {
  let all = 0;
  let main = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    const fields = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`)
      .split(") ")[1].split(" ");
    const ms = (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
    all += ms;
    if (Number(task.name) === pid) main = ms;
  }
  return { all, main };
}

async function run(server: string, inFlight: number) {
  const channel = listenForSandbox();
  const proc = new Deno.Command(Deno.execPath(), {
    args: SERVERS[server],
    env: { RUNTIME_CHANNEL: channel.spec, RUNTIME_SPARES: "1", NO_COLOR: "1" },
    stdin: "null",
  }).spawn();
  const conn = await channel.connected;
  const out = new Writer(conn.writable.getWriter(), () => true);
  let sent = 0;
  let done = 0;
  let started = 0;
  let before = { all: 0, main: 0 };
  const call = () =>
    out.send({
      t: "call",
      id: `r${sent++}`,
      d: "bench",
      fn: "hello",
      payload: { name: "x" },
      timeoutMs: 30_000,
    });
  const finished = Promise.withResolvers<void>();
  const receive = (m: Message) => {
    if (m.t === "ready") {
      out.send({ t: "config", config: CONFIG });
      for (let i = 0; i < inFlight; i++) call();
    } else if (m.t === "code?") {
      out.send({ t: "code", artifact: m.artifact, code: CODE });
    } else if (m.t === "done") {
      if ((m.outcome as { status: number }).status !== 200) {
        throw new Error(
          `the ${server} answered a call with ${JSON.stringify(m.outcome)}`,
        );
      }
      if (++done === WARM) {
        started = performance.now();
        before = cpu(proc.pid);
      }
      if (done === WARM + CALLS) finished.resolve();
      else if (sent < WARM + CALLS) call();
    }
  };
  // A wrong answer, or a process that ends early, ends the benchmark saying so (not a wait).
  readMessages(conn.readable, receive).then(
    () =>
      finished.reject(
        new Error(
          `the ${server} ended before its ${CALLS + WARM} calls were answered`,
        ),
      ),
    finished.reject,
  );
  try {
    await finished.promise;
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  const seconds = (performance.now() - started) / 1000;
  const after = cpu(proc.pid);
  proc.kill("SIGKILL");
  await proc.status;
  return {
    perSecond: CALLS / seconds,
    all: ((after.all - before.all) * 1000) / CALLS,
    main: ((after.main - before.main) * 1000) / CALLS,
  };
}

const median = (values: number[]) =>
  values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)];
const f = (n: number) => n.toFixed(1);

console.log(
  `A tenant's sandbox alone, ${CALLS} calls per run, ${ROUNDS} rounds, medians (us of CPU per call)\n`,
);
console.log(
  "| calls in flight | relay: calls/s | relay: us, all threads / main | sandbox: calls/s | sandbox: us, all threads / main | sandbox vs relay, us per call |",
);
console.log("|---|---|---|---|---|---|");
for (const inFlight of [1, 4, 32]) {
  const runs: Record<
    string,
    { perSecond: number; all: number; main: number }[]
  > = { relay: [], sandbox: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of ["relay", "sandbox"]) {
      runs[server].push(await run(server, inFlight));
    }
  }
  const [r, s] = ["relay", "sandbox"].map((name) => ({
    perSecond: median(runs[name].map((x) => x.perSecond)),
    all: median(runs[name].map((x) => x.all)),
    main: median(runs[name].map((x) => x.main)),
  }));
  console.log(
    `| ${inFlight} | ${Math.round(r.perSecond)} | ${f(r.all)} / ${
      f(r.main)
    } | ${Math.round(s.perSecond)} | ` +
      `${f(s.all)} / ${f(s.main)} | ${(s.all / r.all).toFixed(2)}x |`,
  );
}
