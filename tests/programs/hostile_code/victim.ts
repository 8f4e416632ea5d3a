export async function look(payload: unknown) {
  return {
    polluted: ({} as any).polluted ?? null,
    shared: (globalThis as any).shared ?? null,
    fetchIsNative: String(globalThis.fetch).includes("native") || String(globalThis.fetch).includes("fetch"),
  };
}
