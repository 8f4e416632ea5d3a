// The channel between the host and a sandbox: messages arrive whole and in order however the
// pipe cuts the bytes, and what is sent while other calls are in flight leaves in one write.
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { connectToHost, listenForSandbox, type Message, readMessages, Writer } from "./wire.ts";

const enc = new TextEncoder();

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

Deno.test("messages cut anywhere by the pipe, a character's bytes included, arrive whole and in order", async () => {
  const sent = [{ t: "call", id: "a", payload: { name: "Zoë 🐢" } }, { t: "done", id: "a" }, { t: "lines", list: [] }];
  const bytes = enc.encode(sent.map((m) => JSON.stringify(m)).join("\n") + "\n");
  // Every cut: after each byte, so the turtle's four bytes are split three ways too.
  const chunks = [...bytes].map((b) => new Uint8Array([b]));
  const got: Message[] = [];
  await readMessages(streamOf(chunks), (m) => got.push(m));
  deepStrictEqual(got, sent);

  const whole: Message[] = [];
  await readMessages(streamOf([bytes]), (m) => whole.push(m));
  deepStrictEqual(whole, sent);
});

function recorder() {
  const writes: string[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (chunk) => void writes.push(new TextDecoder().decode(chunk)) });
  return { writes, writer: sink.getWriter() };
}

Deno.test("while calls are in flight, messages sent in one turn leave in one write after it", async () => {
  const { writes, writer } = recorder();
  const out = new Writer(writer, () => true);
  out.send({ t: "done", id: "1" });
  await Promise.resolve(); // a microtask later: still gathering
  out.send({ t: "done", id: "2" });
  strictEqual(writes.length, 0);
  await new Promise((resolve) => setTimeout(resolve, 5));
  await out.drain();
  deepStrictEqual(writes, ['{"t":"done","id":"1"}\n{"t":"done","id":"2"}\n']);
});

Deno.test("a lone message leaves before the turn ends", async () => {
  const { writes, writer } = recorder();
  const out = new Writer(writer, () => false);
  out.send({ t: "done", id: "1" });
  await Promise.resolve();
  await Promise.resolve();
  await Promise.resolve();
  await Promise.resolve();
  strictEqual(writes.length, 1);
  deepStrictEqual(writes, ['{"t":"done","id":"1"}\n']);
});

Deno.test("the socket's name is no secret: only the connection that says the sandbox's token is taken", async () => {
  const channel = listenForSandbox();
  const [name] = channel.spec.split(" ");
  const socket = { transport: "unix" as const, path: `\0${name}` };
  // Anyone on the machine may see the name and connect first: one says nothing, one guesses.
  const silent = await Deno.connect(socket);
  const guesser = await Deno.connect(socket);
  await guesser.write(enc.encode(`${crypto.randomUUID()}\n`));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const refused = await Promise.race([
    guesser.read(new Uint8Array(16)).catch(() => null),
    new Promise((resolve) => (timer = setTimeout(() => resolve("still open"), 2_000))),
  ]);
  clearTimeout(timer);
  strictEqual(refused, null, "a connection with the wrong token is closed");

  const sandbox = await connectToHost(channel.spec);
  const host = await channel.connected;
  await sandbox.write(enc.encode('{"t":"ready"}\n'));
  const got: Message[] = [];
  const reading = readMessages(host.readable, (m) => got.push(m));
  sandbox.close();
  await reading;
  deepStrictEqual(got, [{ t: "ready" }], "the sandbox's messages follow its token, none lost");
  // The name is given up once the sandbox is in: no one else can connect.
  const late = await Deno.connect(socket).then((conn) => (conn.close(), "connected"), () => "refused");
  strictEqual(late, "refused");
  silent.close();
});
