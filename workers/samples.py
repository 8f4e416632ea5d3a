"""The sample worker new tenants start from (the new-worker form, `manage.py demo`)."""

SAMPLE_SOURCE = """\
// Every exported function can be invoked with POST <url>/api/invoke/<name> and a JSON body.
export async function hello(payload: { name?: string }) {
  console.log("hello called with", payload);
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}

export async function add(payload: { a: number; b: number }) {
  console.info(`adding ${payload.a} and ${payload.b}`);
  return payload.a + payload.b;
}
"""
