export async function timerThrows(payload: unknown) {
  setTimeout(() => { throw new Error("thrown from a timer"); }, 10);
  return "answered";
}
export async function rejects(payload: unknown) {
  Promise.reject(new Error("nobody awaits me"));
  return "answered";
}
export async function importsFile(payload: unknown) {
  const url = "file:///etc/passwd";
  return await import(url);
}
export async function privateNetwork(payload: unknown) {
  return await fetch("http://10.0.0.1/");
}
export async function ok(payload: unknown) {
  return "still fine";
}
