export async function pollute(payload: unknown) {
  (Object.prototype as any).polluted = "yes";
  (globalThis as any).shared = "from A";
  (globalThis as any).fetch = () => "hijacked";
  JSON.stringify = () => "hijacked";
  return "done";
}
