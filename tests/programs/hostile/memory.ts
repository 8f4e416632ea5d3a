// Memory the isolate's own accounting does not see: Blobs (kept outside the JavaScript heap)
// and WebAssembly memory grown and written by WebAssembly code.
const held: unknown[] = [];

export async function blobs(payload: { mb: number }) {
  for (let i = 0; i < payload.mb / 16; i++) {
    held.push(new Blob([new Uint8Array(16 * 1024 * 1024).fill(7)]));
  }
  return held.length;
}

// (module (memory (export "m") 1)
//   (func (export "g") (param i32) (result i32)
//     (drop (memory.grow (local.get 0)))
//     (memory.fill (i32.const 0) (i32.const 1) (i32.mul (local.get 0) (i32.const 65536)))
//     (i32.const 0)))
const WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
  0x03, 0x02, 0x01, 0x00, // function 0 has type 0
  0x05, 0x03, 0x01, 0x00, 0x01, // one memory, at least 1 page
  0x07, 0x09, 0x02, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x67, 0x00, 0x00, // exports m, g
  0x0a, 0x19, 0x01, 0x17, 0x00, // code: one body of 23 bytes, no locals
  0x20, 0x00, 0x40, 0x00, 0x1a, // local.get 0; memory.grow 0; drop
  0x41, 0x00, 0x41, 0x01, // i32.const 0; i32.const 1
  0x20, 0x00, 0x41, 0x80, 0x80, 0x04, 0x6c, // local.get 0; i32.const 65536; i32.mul
  0xfc, 0x0b, 0x00, // memory.fill 0
  0x41, 0x00, 0x0b, // i32.const 0; end
]);

export async function wasm(payload: { pages: number }) {
  const { instance } = await WebAssembly.instantiate(WASM);
  held.push(instance);
  return (instance.exports.g as (n: number) => number)(payload.pages);
}

export async function echo(payload: unknown) {
  return payload;
}
