"""Worker sources and small helpers shared by the test modules."""

from deployments.models import Deployment
from deployments.tasks import build_deployment
from workers.models import Worker

GREETER = """\
export async function hello(payload: { name?: string }) {
  console.log("hello called");
  console.info("name is", payload?.name);
  return { greeting: `Hello, ${payload?.name ?? "world"}!` };
}
"""

TYPE_ERROR = """\
export async function hello(payload: { name: string }) {
  const count: number = payload.name;
  return count;
}
"""

SYNTAX_ERROR = """\
export async function hello(payload: unknown {
  return 1;
}
"""

NO_EXPORTS = """\
async function hidden(payload: unknown) {
  return 1;
}
export const answer = 42;
"""

EDGE_CASES = """\
export async function echo(payload: unknown) {
  return { got: payload };
}
export async function fail(payload: unknown) {
  console.log("step one");
  await new Promise((resolve) => setTimeout(resolve, 5));
  console.warn("step two");
  throw new Error("the widget is broken");
}
export async function spin(payload: unknown) {
  console.log("looping forever");
  while (true) {}
}
export async function nap(payload: { ms: number; tag: string }) {
  console.log(`start ${payload.tag}`);
  await new Promise((resolve) => setTimeout(resolve, payload.ms));
  console.log(`end ${payload.tag}`);
  return payload.tag;
}
export async function untyped(payload) {
  return payload;
}
"""


def create_deployment(worker: Worker, source: str) -> Deployment:
    """A deployment row without enqueueing its build (tests build it themselves)."""
    return Deployment.objects.create(worker=worker, tenant=worker.tenant, source=source)


def build_now(worker: Worker, source: str) -> Deployment:
    """Runs the real build task body in this process and returns the finished deployment."""
    deployment = create_deployment(worker, source)
    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    return deployment


def build_files(worker: Worker, files: dict[str, str], entry=None, lockfile="") -> Deployment:
    """A program of several files (deployments.program), built in this process."""
    from deployments.program import program_from_files

    program = program_from_files(files, entry)
    deployment = Deployment.objects.create(
        worker=worker,
        tenant=worker.tenant,
        files=program.files,
        entry=program.entry,
        source=program.entry_source,
        lockfile=lockfile,
    )
    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    return deployment


def ready_in_production(worker: Worker) -> Deployment:
    """A ready deployment of GREETER (function "hello"), made production, without a build."""
    from deployments.releases import auto_promote

    deployment = create_deployment(worker, GREETER)
    deployment.transition("queued", "building")
    deployment.transition("building", "ready", functions=["hello"])
    auto_promote(deployment)
    worker.refresh_from_db()
    return deployment
