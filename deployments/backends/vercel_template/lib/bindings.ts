// ctx.kv and ctx.enqueue in a generated deployment: asked of the platform's internal API with
// this deployment's own credential, so the code reaches the namespaces bound to it and nothing
// else (the platform checks the binding against the deployment's snapshot). The same answers
// and errors as on the platform's own runtime; nothing is cached here (a function instance
// lives briefly and may run beside others), so every read sees the latest write.
import config from "./deployment.json";

type Own = typeof config & {
  kvUrl?: string;
  enqueueUrl?: string;
  eventsUrl?: string;
  kv?: Record<string, string>;
};
const own = config as Own;
const MAX_KEY_CHARS = 512;
const MAX_VALUE_BYTES = 1024 * 1024;

export class BindingError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "BindingError";
  }
}

export async function ask(url: string | undefined, body: unknown, ok = 200): Promise<any> {
  let res: Response;
  try {
    res = await fetch(url ?? "", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${config.ingest.token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new BindingError("control_plane_unavailable", `The platform could not be reached (${(err as Error).message}); retry.`);
  }
  const answer = await res.json().catch(() => ({}));
  if (res.status !== ok) {
    const error = answer?.error ?? {};
    throw new BindingError(error.code ?? "control_plane_unavailable", error.message ?? `The platform answered ${res.status}.`);
  }
  return answer;
}

function checkedKey(key: unknown): string {
  if (typeof key !== "string" || key === "") throw new TypeError("A key is a non-empty string.");
  if (key.length > MAX_KEY_CHARS) throw new RangeError(`A key holds at most ${MAX_KEY_CHARS} characters.`);
  return key;
}

function valueBytes(value: unknown): Buffer {
  let bytes: Buffer;
  if (typeof value === "string") bytes = Buffer.from(value, "utf8");
  else if (value instanceof ArrayBuffer) bytes = Buffer.from(new Uint8Array(value));
  else if (ArrayBuffer.isView(value)) bytes = Buffer.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  else {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError("This value cannot be stored: give text, bytes or JSON.");
    bytes = Buffer.from(text, "utf8");
  }
  if (bytes.byteLength > MAX_VALUE_BYTES) {
    throw new RangeError(`A value holds at most ${MAX_VALUE_BYTES} bytes; this one has ${bytes.byteLength}.`);
  }
  return bytes;
}

function read(bytes: Buffer, type?: string): unknown {
  if (type === "bytes") return new Uint8Array(bytes);
  if (type === "json") return JSON.parse(bytes.toString("utf8"));
  if (type === "text" || type === undefined) return bytes.toString("utf8");
  throw new TypeError('A value is read as "text", "json" or "bytes".');
}

const when = (ms: number | null | undefined) => (ms == null ? null : new Date(ms));

function namespace(binding: string) {
  const kv = (op: string, fields: object) => ask(own.kvUrl, { binding, op, ...fields });
  return Object.freeze({
    async get(key: string, type?: string) {
      const entry = await kv("get", { key: checkedKey(key) });
      return entry.found ? read(Buffer.from(entry.value, "base64"), type) : null;
    },
    async getWithMetadata(key: string, type?: string) {
      const entry = await kv("get", { key: checkedKey(key) });
      if (!entry.found) return null;
      return {
        value: read(Buffer.from(entry.value, "base64"), type),
        metadata: entry.metadata ?? null,
        version: entry.version,
        expiresAt: when(entry.expiresAt),
      };
    },
    async put(key: string, value: unknown, options?: { ttl?: number; metadata?: unknown; ifVersion?: number }) {
      const { ttl, metadata, ifVersion } = options ?? {};
      const written = await kv("put", {
        key: checkedKey(key), value: valueBytes(value).toString("base64"), ttl, metadata, ifVersion,
      });
      return { ok: written.ok, version: written.version };
    },
    async delete(key: string) {
      return (await kv("delete", { key: checkedKey(key) })).deleted;
    },
    async list(options?: { prefix?: string; cursor?: string; limit?: number }) {
      const { prefix, cursor, limit } = options ?? {};
      const page = await kv("list", { prefix: prefix ?? "", cursor: cursor ?? "", limit: limit ?? 100 });
      return {
        keys: page.keys.map((k: any) => ({
          name: k.key, metadata: k.metadata ?? null, version: k.version, expiresAt: when(k.expiresAt),
        })),
        cursor: page.cursor ?? null,
      };
    },
  });
}

/** The deployment's bindings, by name (as deployed): one frozen object for every call. */
export const kvBindings = Object.freeze(
  Object.fromEntries(Object.keys(own.kv ?? {}).map((name) => [name, namespace(name)])),
);

export async function enqueue(
  fn: string,
  payload?: unknown,
  options?: { delay?: number; idempotencyKey?: string; worker?: string },
) {
  if (typeof fn !== "string" || fn === "") throw new TypeError("ctx.enqueue needs a function's name.");
  const text = JSON.stringify(payload === undefined ? null : payload);
  if (text === undefined) throw new TypeError("The payload of ctx.enqueue must be JSON.");
  const { delay, idempotencyKey, worker } = options ?? {};
  const run = await ask(own.enqueueUrl, {
    function: fn, payload: text, worker: worker ?? null, delay: delay ?? 0, idempotencyKey: idempotencyKey ?? "",
  }, 202);
  return { runId: run.runId as string, status: run.status as string };
}

/** ctx.sendEvent: to a run of the tenant, or to every waiting run of a worker (this one by default). */
export async function sendEvent(name: string, payload?: unknown, options?: { run?: string; worker?: string }) {
  if (typeof name !== "string" || name === "") throw new TypeError("An event needs a name.");
  const text = JSON.stringify(payload === undefined ? null : payload);
  if (text === undefined) throw new TypeError("An event's payload must be JSON.");
  const sent = await ask(own.eventsUrl, { name, payload: text, run: options?.run ?? null, worker: options?.worker ?? null }, 202);
  return { delivered: sent.delivered as string[] };
}
