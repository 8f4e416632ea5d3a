"""Creating, canceling and deleting: the row first, the build enqueued once the row is
committed; runtime hosts told after commit."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenancy.quotas import check_deploy
from workers.models import Worker
from workers.secrets import decrypt, seal, unseal

from .announce import announce_worker
from .locks import lock_ingest
from .models import Deployment
from .program import Program, program_from_source


def snapshot_secrets(worker: Worker) -> str:
    values = {s.name: decrypt(s.value_encrypted) for s in worker.secrets.all()}
    return seal(values)


def snapshot_settings(worker: Worker) -> dict[str, str]:
    return dict(worker.plain_settings.values_list("name", "value"))


def snapshot_bindings(worker: Worker) -> dict[str, str]:
    """Key-value bindings: name -> namespace id."""
    return {b.name: str(b.namespace.code) for b in worker.kv_bindings.select_related("namespace")}


def changed_names(now: dict, then: dict) -> list[str]:
    """Names added, changed or removed between two snapshots."""
    return sorted(name for name in now.keys() | then.keys() if now.get(name) != then.get(name))


def settings_changed_since(deployment: Deployment) -> list[str]:
    """Names of the worker's plain settings added, changed or removed after `deployment`."""
    return changed_names(snapshot_settings(deployment.worker), deployment.plain_settings or {})


def secrets_changed_since(deployment: Deployment) -> list[str]:
    """Names of the worker's secrets that were added, changed or removed after `deployment`
    took its snapshot: it still runs with the old set until the next deploy."""
    now = {s.name: decrypt(s.value_encrypted) for s in deployment.worker.secrets.all()}
    return changed_names(
        now, unseal(deployment.secrets_sealed) if deployment.secrets_sealed else {}
    )


def deploy(
    worker: Worker,
    source: str | Program,
    user=None,
    backend: str | None = None,
    update_lock: bool = False,
    preview_only: bool = False,
) -> Deployment:
    """A new deployment of `worker` (one module's text, or a Program of several files),
    built once committed. Its packages start from the lock the worker runs with, unless
    `update_lock`; with `preview_only` it stays a preview when ready. Raises
    QuotaExceeded."""
    from .tasks import build_deployment

    program = source if isinstance(source, Program) else program_from_source(source)
    check_deploy(worker.tenant)
    with transaction.atomic():
        deployment = Deployment.objects.create(
            worker=worker,
            tenant=worker.tenant,
            files=program.files,
            entry=program.entry,
            source=program.entry_source,
            lockfile="" if update_lock else current_lock(worker),
            update_lock=update_lock,
            preview_only=preview_only,
            secrets_sealed=snapshot_secrets(worker),
            plain_settings=snapshot_settings(worker),
            kv_bindings=snapshot_bindings(worker),
            created_by=user if user is not None and user.is_authenticated else None,
            backend=backend or worker.tenant.backend or settings.DEFAULT_BACKEND,
        )
        deployment.tell("deployment.created")
        build_deployment.delay_on_commit(deployment.pk)
    return deployment


def refuse(worker: Worker, message: str, user=None) -> Deployment:
    """An upload that cannot be a program (no code, an entry that is not there, an archive
    that is not one): a deployment whose build failed at once, shown and counted like any
    failed build, with the reason. Raises QuotaExceeded."""
    check_deploy(worker.tenant)
    now = timezone.now()
    with transaction.atomic():
        deployment = Deployment.objects.create(
            worker=worker,
            tenant=worker.tenant,
            files={},
            entry="",
            source="",
            status=Deployment.Status.ERROR,
            error_message=message,
            build_log="-> Reading the upload\n" + message,
            created_by=user if user is not None and user.is_authenticated else None,
            backend=worker.tenant.backend or settings.DEFAULT_BACKEND,
            started_at=now,
            finished_at=now,
        )
        deployment.tell("deployment.created")
        deployment.tell("deployment.failed")
    return deployment


def current_lock(worker: Worker) -> str:
    """The lock of the deployment serving production, or of the newest ready one."""
    serving = worker.production
    if serving is None or not serving.lockfile:
        serving = (
            worker.deployments.filter(status=Deployment.Status.READY).exclude(lockfile="").first()
        )
    return serving.lockfile if serving else ""


def cancel(deployment: Deployment) -> bool:
    """Stop a build that has not ended; on a remote back end, cancel it there too. False if
    it had already ended (nothing to cancel)."""
    from .tasks import cancel_remote

    while not deployment.is_terminal:
        if deployment.transition(deployment.status, Deployment.Status.CANCELED):
            if deployment.runs_on.remote and deployment.backend_id:
                cancel_remote.delay_on_commit(deployment.pk)
            # A remote build whose id is not saved yet is canceled by its submit task,
            # which finds the row canceled when it saves.
            return True
        deployment.refresh_from_db()  # it moved on meanwhile: look again
    return False


def delete_worker(worker: Worker) -> None:
    """Delete a worker with its deployments and lines (and, after commit, on their back end
    and in the runtime hosts' caches)."""
    with transaction.atomic():
        announce_worker(worker)  # after commit, hosts forget what they cached of it
        lock_ingest([worker.tenant_id])  # no line may be stored for it half-way through
        worker.delete()


def set_visibility(worker: Worker, public: bool) -> None:
    Worker.objects.filter(pk=worker.pk).update(public=public)
    worker.public = public
    announce_worker(worker)  # hosts check access with what they cached: refresh it
