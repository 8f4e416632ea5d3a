// Holds 1.5 GB of typed arrays at its top level (outside the V8 heap the heap flag limits).
const held: Uint8Array[] = [];
for (let i = 0; i < 15; i++) held.push(new Uint8Array(100 * 1024 * 1024).fill(1));

export async function size() {
  return held.length;
}
