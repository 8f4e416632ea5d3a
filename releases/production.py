"""What production URLs serve, and every way it changes: auto-promote, promote and roll back,
canaries, and releases of several workers at once.

Every change goes through `switch`. In one transaction it locks the tenant's row, takes the
tenant's next generation, points each worker at what it now serves and writes one
ProductionChange row per worker at that generation. Runtime hosts are told after commit.

Why generations: a call that arrives through a production URL is served as of the generation
its host resolved, and carries that generation to every call it makes to the tenant's other
production URLs; those resolve as of the same generation (`serving_at`). So a chain of calls
sees one whole set, the old or the new, never half of each, even while hosts learn the switch
at different moments.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from deployments.announce import announce
from deployments.models import Deployment
from tenancy.access import acts
from tenancy.models import AuditEvent, Tenant
from workers.models import Worker

from .aliases import move_aliases
from .models import ProductionChange, Release

Status = Deployment.Status
AUTOMATIC = "automatic canary rollback"  # who rolls a canary back by its rule


class ReleaseError(Exception):
    """A change that cannot be made; the message says why, for people."""


@dataclass
class Serving:
    production: Deployment | None
    canary: Deployment | None = None
    percent: int = 0


def current(worker: Worker) -> Serving:
    return Serving(worker.production, worker.canary, worker.canary_percent)


def switch(tenant: Tenant, changes: dict[Worker, Serving], by: str, how: str) -> int:
    """Apply `changes` as one generation of the tenant; its number. Call inside
    `transaction.atomic()` with the tenant locked (`locked`), after deciding under the lock."""
    generation = Tenant.objects.get(pk=tenant.pk).generation + 1
    Tenant.objects.filter(pk=tenant.pk).update(generation=generation)
    now = timezone.now()
    for worker, serving in changes.items():
        if not worker.production_changes.exists():
            # The worker's first recorded change: what it served until now is generation 0,
            # so a call pinned before this change still finds it.
            ProductionChange.objects.create(
                tenant=tenant, generation=0, worker=worker, production=worker.production,
                canary=worker.canary, canary_percent=worker.canary_percent, how="before",
            )  # fmt: skip
        fields = {
            "canary": serving.canary,
            "canary_percent": serving.percent if serving.canary else 0,
        }
        if serving.production != worker.production:
            fields.update(production=serving.production, production_since=now, promoted_by=by)
        if serving.canary is None:
            fields.update(canary_since=None, canary_by="")
        elif serving.canary != worker.canary:
            fields.update(canary_since=now, canary_by=by, canary_note="")
        Worker.objects.filter(pk=worker.pk).update(**fields)
        for name, value in fields.items():
            setattr(worker, name, value)
        if "production" in fields and serving.production is not None:
            serving.production.tell(
                "deployment.rolled_back" if how == "rollback" else "deployment.promoted",
                how=how, by=by,
            )  # fmt: skip
        ProductionChange.objects.create(
            tenant=tenant, generation=generation, worker=worker, production=serving.production,
            canary=serving.canary, canary_percent=fields["canary_percent"], how=how, by=by,
        )  # fmt: skip
    announce(*(w.host for w in changes))
    remote = [w.pk for w in changes if w.production and w.production.runs_on.remote]
    if remote:
        transaction.on_commit(lambda: move_aliases.delay(remote))
    return generation


def locked(tenant_id: int) -> Tenant:
    """The tenant's row, locked until the transaction ends: one change at a time."""
    return Tenant.objects.select_for_update().get(pk=tenant_id)


def fresh(worker: Worker) -> Worker:
    return Worker.objects.select_related("tenant", "production", "canary").get(pk=worker.pk)


def check_ready(worker: Worker, deployment: Deployment) -> None:
    if deployment.worker_id != worker.pk:
        raise ReleaseError(f"{deployment.short_id} is not a deployment of {worker.name}.")
    if deployment.status != Status.READY:
        raise ReleaseError(
            f"{deployment.short_id} is {deployment.status}; only ready deployments serve."
        )


def check_active(tenant: Tenant) -> None:
    if not acts(tenant):
        raise ReleaseError("This tenant is suspended: nothing changes until it is resumed.")


# --- one worker ---------------------------------------------------------------------------


def auto_promote(deployment: Deployment) -> bool:
    """A newly ready deployment goes live by itself if its worker auto-promotes, no newer
    deployment is live already, and no canary is under way (someone is releasing by hand)."""
    with transaction.atomic():
        locked(deployment.tenant_id)
        worker = fresh(deployment.worker)
        serving = worker.production
        if not worker.auto_promote or worker.canary_id is not None or deployment.preview_only:
            return False
        if serving is not None and serving.created >= deployment.created:
            return False
        switch(
            worker.tenant, {worker: Serving(deployment)}, "auto-promote, when it was ready", "auto"
        )
    deployment.worker.refresh_from_db()
    return True


def promote_when_ready(sender, deployment: Deployment, **kwargs) -> None:
    """deployments.signals.deployment_ready: inside the build's commit."""
    auto_promote(deployment)


def set_production(worker: Worker, deployment: Deployment, by: str) -> str:
    """Point the worker's stable URL at a ready deployment: "promote", or "rollback" to an
    earlier one. A canary under way ends (its traffic goes to the new production)."""
    with transaction.atomic():
        tenant = locked(worker.tenant_id)
        check_active(tenant)
        now = fresh(worker)
        check_ready(now, deployment)
        was = now.production
        how = "rollback" if was is not None and deployment.created < was.created else "promote"
        switch(tenant, {now: Serving(deployment)}, by, how)
    worker.refresh_from_db()
    return how


def start_canary(
    worker: Worker,
    deployment: Deployment,
    percent: int,
    by: str,
    auto_rollback: bool | None = None,
    margin: float | None = None,
    min_calls: int | None = None,
) -> None:
    """Send `percent` % of production traffic to `deployment`; again with the same one to
    raise or lower the share (its metrics keep counting from the start)."""
    if not 1 <= percent <= 99:
        raise ReleaseError("A canary takes 1 to 99 % of the traffic; 100 % is a promotion.")
    with transaction.atomic():
        tenant = locked(worker.tenant_id)
        check_active(tenant)
        now = fresh(worker)
        check_ready(now, deployment)
        if now.production is None:
            raise ReleaseError("The worker serves nothing yet: promote a deployment first.")
        if deployment == now.production:
            raise ReleaseError(f"{deployment.short_id} already serves production.")
        if not deployment.runs_on.splits_traffic or not now.production.runs_on.splits_traffic:
            raise ReleaseError(
                "Canaries need both deployments on this platform's runtime, which splits the "
                "traffic; this worker's production is served elsewhere. Promote instead."
            )
        settings_changed = {}
        if auto_rollback is not None:
            settings_changed["canary_auto_rollback"] = auto_rollback
        if margin is not None:
            settings_changed["canary_margin"] = margin
        if min_calls is not None:
            settings_changed["canary_min_calls"] = min_calls
        if settings_changed:
            Worker.objects.filter(pk=now.pk).update(**settings_changed)
        how = "canary.start" if now.canary != deployment else "canary.percent"
        switch(tenant, {now: Serving(now.production, deployment, percent)}, by, how)
    worker.refresh_from_db()


def end_canary(worker: Worker, by: str, promote: bool, note: str = "") -> Deployment | None:
    """Cancel the canary (all traffic back to production) or promote it (all traffic to it).
    The canary it ended, or None when there was none."""
    with transaction.atomic():
        tenant = locked(worker.tenant_id)
        now = fresh(worker)
        canary = now.canary
        if canary is None:
            return None
        if promote:
            check_active(tenant)
            serving, how = Serving(canary), "canary.promote"
        else:
            serving, how = Serving(now.production), "canary.cancel"
        switch(tenant, {now: serving}, by, how)
        if note:
            Worker.objects.filter(pk=now.pk).update(canary_note=note)
        if not promote:
            canary.tell(
                "canary.rolled_back", automatic=by == AUTOMATIC, reason=note, by=by,
                production=now.production.short_id if now.production else None,
            )  # fmt: skip
    worker.refresh_from_db()
    return canary


# --- what each side of a canary does ------------------------------------------------------


@dataclass
class SideMetrics:
    deployment: Deployment
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        """Per cent of calls that failed (threw, timed out, crashed, or answered 5xx)."""
        return 100.0 * self.errors / self.calls if self.calls else 0.0


MAX_SAMPLED = 5000  # the newest calls of each side: enough for percentiles, bounded cost


def side_metrics(deployment: Deployment, since) -> SideMetrics:
    rows = list(
        deployment.invocations.filter(started_at__gte=since)
        .order_by("-started_at")
        .values_list("status", "status_code", "duration_ms")[:MAX_SAMPLED]
    )
    errors = sum(1 for status, code, _ms in rows if status != "ok" or code >= 500)
    durations = sorted(ms for _s, _c, ms in rows)

    def pct(p: float) -> float | None:
        if not durations:
            return None
        return durations[min(len(durations) - 1, int(p / 100 * len(durations)))]

    return SideMetrics(deployment, len(rows), errors, pct(50), pct(95))


def canary_metrics(worker: Worker) -> tuple[SideMetrics, SideMetrics] | None:
    """(stable, canary) since the canary started, or None without a canary."""
    if worker.canary is None or worker.production is None or worker.canary_since is None:
        return None
    since = worker.canary_since
    return side_metrics(worker.production, since), side_metrics(worker.canary, since)


STEPS = (1, 5, 10, 25, 50, 75)


def canary_steps(worker: Worker) -> list[int]:
    """The shares offered as one-click steps."""
    return [s for s in STEPS if s != worker.canary_percent]


def judge_canary(worker: Worker) -> str | None:
    """If the rule says roll back (the canary failed more than the stable side by more than
    the margin, over enough calls), the reason; else None."""
    if not worker.canary_auto_rollback:
        return None
    measured = canary_metrics(worker)
    if measured is None:
        return None
    stable, canary = measured
    if canary.calls < worker.canary_min_calls:
        return None
    if canary.error_rate - stable.error_rate <= worker.canary_margin:
        return None
    return (
        f"Rolled back by itself: the canary {canary.deployment.short_id} failed "
        f"{canary.error_rate:.1f}% of {canary.calls} calls, production "
        f"{stable.error_rate:.1f}% of {stable.calls} (allowed margin "
        f"{worker.canary_margin:g} points)."
    )


def watch_canaries() -> list[str]:
    """Roll back every canary its rule condemns; the workers rolled back."""
    rolled = []
    for worker in Worker.objects.select_related("tenant", "production", "canary").filter(
        canary__isnull=False, canary_auto_rollback=True
    ):
        reason = judge_canary(worker)
        if reason is None:
            continue
        canary = end_canary(worker, AUTOMATIC, promote=False, note=reason)
        if canary is not None:
            AuditEvent.objects.create(
                tenant=worker.tenant, actor=None, actor_label=AUTOMATIC,
                action="canary.rollback", target=worker.name,
                details={"deployment": canary.short_id, "reason": reason},
            )  # fmt: skip
            rolled.append(worker.name)
    return rolled


# --- several workers at once --------------------------------------------------------------


def promote_release(release: Release, by: str) -> int:
    """Switch every worker of the release at once (one generation); the generation."""
    with transaction.atomic():
        tenant = locked(release.tenant_id)
        check_active(tenant)
        if Release.objects.get(pk=release.pk).status == Release.Status.LIVE:
            raise ReleaseError("This release is live already.")
        items = list(release.items.select_related("worker", "deployment"))
        if not items:
            raise ReleaseError("This release names no deployment.")
        changes, previous = {}, {}
        for item in items:
            worker = fresh(item.worker)
            check_ready(worker, item.deployment)
            previous[str(worker.code)] = str(worker.production.code) if worker.production else None
            changes[worker] = Serving(item.deployment)
        generation = switch(tenant, changes, by, f"release {release.name}")
        Release.objects.filter(pk=release.pk).update(
            status=Release.Status.LIVE, promoted_by=by, promoted_at=timezone.now(),
            generation=generation, previous=previous, reverted_by="", reverted_at=None,
        )  # fmt: skip
        # A release that was live for some of these workers is no longer what they serve.
        Release.objects.filter(
            tenant=tenant, status=Release.Status.LIVE, items__worker__in=list(changes)
        ).exclude(pk=release.pk).update(status=Release.Status.DRAFT)
    release.refresh_from_db()
    return generation


def revert_release(release: Release, by: str) -> int:
    """Put back, at once, what the release's workers served before it was promoted."""
    with transaction.atomic():
        tenant = locked(release.tenant_id)
        check_active(tenant)
        release.refresh_from_db()
        if release.status != Release.Status.LIVE:
            raise ReleaseError("Only a live release can be reverted.")
        workers = {str(w.code): w for w in Worker.objects.filter(
            tenant=tenant, code__in=list(release.previous)
        ).select_related("tenant", "production", "canary")}  # fmt: skip
        targets = {
            str(d.code): d
            for d in Deployment.objects.filter(
                tenant=tenant, code__in=[c for c in release.previous.values() if c]
            )
        }
        changes = {}
        for code, was in release.previous.items():
            worker = workers.get(code)
            if worker is None:
                continue  # deleted since: nothing to put back
            target = targets.get(was) if was else None
            if was and target is None:
                raise ReleaseError(f"{worker.name}'s earlier deployment no longer exists.")
            changes[worker] = Serving(target)
        generation = switch(tenant, changes, by, f"revert {release.name}")
        Release.objects.filter(pk=release.pk).update(
            status=Release.Status.REVERTED, reverted_by=by, reverted_at=timezone.now()
        )
    release.refresh_from_db()
    return generation


def serving_at(worker: Worker, generation: int) -> ProductionChange | None:
    """What the worker's production URL served at `generation` of its tenant, or None when
    its history does not reach back (it has not changed since: serve what it serves)."""
    return (
        worker.production_changes.filter(generation__lte=generation)
        .select_related("production", "canary")
        .order_by("-generation")
        .first()
    )
