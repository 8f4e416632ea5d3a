"""Worker sources and small helpers shared by the test modules."""

from pathlib import Path

from deployments.models import Deployment
from deployments.tasks import build_deployment
from workers.models import Worker

PROGRAMS = Path(__file__).parent / "programs"


def program(name: str) -> str:
    """A tenant program the tests deploy: tests/programs/<name>.ts."""
    return (PROGRAMS / f"{name}.ts").read_text()


GREETER = program("basics/greeter")
NO_EXPORTS = program("basics/no_exports")
EDGE_CASES = program("basics/edge_cases")
SITE = program("basics/site")
CONTEXT = program("basics/context")
# Broken on purpose (not type-checked with the others): the build must say what is wrong.
TYPE_ERROR = program("broken/type_error")
SYNTAX_ERROR = program("broken/syntax_error")


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
    from releases.production import auto_promote

    deployment = create_deployment(worker, GREETER)
    deployment.transition("queued", "building")
    deployment.transition("building", "ready", functions=["hello"])
    auto_promote(deployment)
    worker.refresh_from_db()
    return deployment


def built_with_namespace(tenant, name: str, source: str, **worker_fields):
    """A public worker whose namespace `<name>-data` is bound as COUNTERS, and a ready
    deployment of `source` built with that binding: (worker, namespace, deployment)."""
    from deployments.deploy import snapshot_bindings
    from kv.models import Binding, Namespace

    worker = Worker.objects.create(tenant=tenant, name=name, public=True, **worker_fields)
    namespace = Namespace.objects.create(tenant=tenant, name=f"{name}-data")
    Binding.objects.create(worker=worker, namespace=namespace, name="COUNTERS")
    deployment = create_deployment(worker, source)
    deployment.kv_bindings = snapshot_bindings(worker)
    deployment.save()
    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == "ready", deployment.error_message
    return worker, namespace, deployment
