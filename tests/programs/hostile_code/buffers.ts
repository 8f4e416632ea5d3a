import { Buffer } from "node:buffer";
export async function bomb(payload: { mb: number; how: string }) {
  console.log("filling buffers");
  const kept: unknown[] = [];
  const text = payload.how === "text" ? "x".repeat(1024 * 1024) : ""; // (one string, many encodings)
  for (let i = 0; i < payload.mb; i++) {
    if (payload.how === "typed") kept.push(new Uint8Array(1024 * 1024));
    else if (payload.how === "buffer") kept.push(new ArrayBuffer(1024 * 1024));
    else if (payload.how === "slice") kept.push(new Uint8Array(1024 * 1024).slice());
    else if (payload.how === "wasm") kept.push(new WebAssembly.Memory({ initial: 16 }));
    else if (payload.how === "node") kept.push(Buffer.alloc(1024 * 1024));
    else kept.push(new TextEncoder().encode(text));
  }
  return kept.length;
}
export async function fine(payload: { mb: number }) {
  const kept = Array.from({ length: payload.mb }, () => new Uint8Array(1024 * 1024));
  return { ok: kept.length, same: new Uint8Array(4).constructor === Uint8Array,
           isView: new Uint8Array(4).slice() instanceof Uint8Array };
}
