// The channel between the runtime host and a tenant's sandbox process (cell.ts): one JSON
// message per line, both ways, on a Unix socket the host listens on for that sandbox alone
// (cells.ts says why not its stdin and stdout). Messages sent in one turn of the event loop go
// out in one write. Bytes travel as base64.
//
// host -> sandbox                                  sandbox -> host
//   {t:"config", config}  a deployment's config      {t:"ready"}  booted, spares warm
//   {t:"call", id, d, fn, payload, timeoutMs,         {t:"done", id, outcome, cold}  an answer
//      http?, pin?}                                   {t:"head", id, outcome, cold, status,
//   {t:"cancel", id}  the caller of a stream left        statusText, headers, hasBody}  a fetch
//                                                        handler's, its body to follow in
//                                                     {t:"chunk", id, b}  {t:"end", id}
//   {t:"code", artifact, code}  asked-for code        {t:"fail", id, message}  a stream broke
//   {t:"ifetched", n, answer}  an internal call's     {t:"code?", artifact}  code it lacks
//      answer                                         {t:"ifetch", n, req, pin}  a call to
//   {t:"stats?", n}                                      another of the platform's workers
//   {t:"bound", n, status, body}  the control       {t:"bind", n, d, path, req}  ctx.kv or
//      plane's answer to a "bind"                      ctx.enqueue or ctx.step of deployment
//                                                      d ("kv", "enqueue" or "steps": the
//                                                      internal API's body)
//                                                     {t:"lines", list}  console lines, as
//                                                        printed: [deployment, request, fn, line]
//                                                     {t:"stats", n, isolates, spares}
//                                                     {t:"usage", cpuMs, rss, kv: [reads,
//                                                        writes]}  4 times a second
//                                                     {t:"stuck", message}  a thread that
//                                                        could not be stopped: it exits next
//   {t:"preload", d}  load deployment d now           {t:"preloaded", d}  it is loaded (or
//                                                        could not be)

import { setImmediate } from "node:timers";

export type Message = { t: string; [key: string]: unknown };

/** Runs `send` soon: while other calls are in flight, at the end of this turn of the event
 * loop, so that everything ready in the turn leaves together and wakes the other side once;
 * a lone message at once. (The host's channel to a sandbox, a sandbox's to its host, and the
 * pool's to an isolate all send this way.) */
export function sendSoon(send: () => void, othersInFlight: boolean) {
  if (othersInFlight) setImmediate(send);
  else queueMicrotask(send);
}

const encoder = new TextEncoder();

type Sink = WritableStreamDefaultWriter<Uint8Array>;

export class Writer {
  private queued: string[] = [];
  private sink: Sink | null = null;
  private writing: Promise<void>;
  private scheduled = false;
  closed = false;

  /** `sink` may come later (a channel still being connected): what is sent meanwhile waits
   * for it, in order. `busy`: whether other calls are in flight on this channel (see
   * sendSoon). */
  constructor(sink: Sink | Promise<Sink>, private busy: () => boolean = () => false) {
    this.writing = Promise.resolve(sink).then((ready) => void (this.sink = ready)).catch(() => {
      this.closed = true; // it never came: the other side is gone
    });
  }

  send(message: Message) {
    if (this.closed) return;
    this.queued.push(JSON.stringify(message));
    if (!this.scheduled) {
      this.scheduled = true;
      sendSoon(this.flush, this.busy());
    }
  }

  private flush = () => {
    this.scheduled = false;
    if (!this.queued.length) return;
    const text = this.queued.join("\n") + "\n";
    this.queued = [];
    this.writing = this.writing.then(() => this.sink?.write(encoder.encode(text))).catch(() => {
      this.closed = true; // the other side is gone
    });
  };

  /** Resolves once everything sent so far is written. */
  async drain(): Promise<void> {
    this.flush();
    await this.writing;
  }
}

/** Calls `receive` with each message from `stream`, in order, until it ends. */
export async function readMessages(stream: ReadableStream<Uint8Array>, receive: (m: Message) => void) {
  // One decoder read by hand rather than a TextDecoderStream piped in: a second stream costs
  // a promise and a queue per chunk, on both sides of every call.
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    let start = 0;
    while ((end = buffer.indexOf("\n", start)) >= 0) {
      const line = buffer.slice(start, end);
      start = end + 1;
      if (line) receive(JSON.parse(line));
    }
    buffer = start ? buffer.slice(start) : buffer;
  }
}

// --- the socket ---------------------------------------------------------------------------
// Its name is abstract (no file to make, clean up or give permissions on), so any local user
// could connect to it, and /proc/net/unix shows it. What tells the sandbox apart is a token
// only the host and the sandbox's own environment hold: the sandbox sends it first, and a
// connection that does not is closed. The sandbox learns both as RUNTIME_CHANNEL, "<name>
// <token>".

const HANDSHAKE_MS = 10_000;

/** The host's end: listens on a new abstract name for the one connection that says the
 * token. `spec` is what the sandbox is given; `close` stops listening (the sandbox is gone). */
export function listenForSandbox(): { spec: string; connected: Promise<Deno.Conn>; close: () => void } {
  const name = `functions-${crypto.randomUUID()}`;
  const said = `${crypto.randomUUID()}\n`; // the token, as the sandbox sends it
  const listener = Deno.listen({ transport: "unix", path: `\0${name}` });
  const close = () => {
    try {
      listener.close();
    } catch {
      // closed already
    }
  };
  const { promise: connected, resolve, reject } = Promise.withResolvers<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      // Each one checked on its own: a connection that says nothing holds up no other.
      const timer = setTimeout(() => conn.close(), HANDSHAKE_MS);
      readExactly(conn, said.length).then((first) => {
        clearTimeout(timer);
        if (first === said) {
          close();
          resolve(conn);
        } else conn.close();
      }, () => clearTimeout(timer));
    }
  })().catch(() => {}).finally(() => reject(new Error("the sandbox never connected")));
  return { spec: `${name} ${said.trim()}`, connected, close };
}

/** The sandbox's end: connects to the host and says its token. */
export async function connectToHost(spec: string): Promise<Deno.Conn> {
  const [name, token] = spec.split(" ");
  const conn = await Deno.connect({ transport: "unix", path: `\0${name}` });
  await conn.write(encoder.encode(`${token}\n`));
  return conn;
}

/** The next `count` bytes of `conn` as text, and not a byte more (the messages follow). */
async function readExactly(conn: Deno.Conn, count: number): Promise<string> {
  const bytes = new Uint8Array(count);
  let got = 0;
  while (got < count) {
    const n = await conn.read(bytes.subarray(got));
    if (n === null) break;
    got += n;
  }
  return new TextDecoder().decode(bytes.subarray(0, got));
}

type Base64Bytes = Uint8Array & { toBase64(): string };
type Base64Ctor = { fromBase64(text: string): Uint8Array };

export const toBase64 = (bytes: Uint8Array): string => (bytes as Base64Bytes).toBase64();
export const fromBase64 = (text: string): Uint8Array => (Uint8Array as unknown as Base64Ctor).fromBase64(text);
