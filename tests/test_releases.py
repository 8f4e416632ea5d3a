"""Preview and production: auto-promote on or off, promote and roll back from the portal
with a confirmation that shows what changes, who did it and since when."""

import uuid

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.models import Deployment
from releases.models import ProductionChange, Release, ReleaseItem
from releases.production import auto_promote, serving_at, start_canary
from releases.tasks import check_canaries
from telemetry.models import Invocation
from tenancy.models import AuditEvent
from workers.models import Worker

from .conftest import client_for
from .helpers import GREETER, create_deployment

S = Deployment.Status


def built(worker, source=GREETER, functions=("hello",)):
    """A deployment brought to ready the way the build task does (auto-promote included)."""
    deployment = create_deployment(worker, source)
    deployment.transition(S.QUEUED, S.BUILDING)
    deployment.transition(S.BUILDING, S.READY, functions=list(functions))
    auto_promote(deployment)
    return deployment


def test_with_auto_promote_off_a_ready_deployment_is_a_preview_until_promoted(
    owner_client, worker, owner
):
    first = built(worker)
    worker.refresh_from_db()
    assert worker.production == first and worker.promoted_by.startswith("auto-promote")
    owner_client.post(reverse("worker-auto-promote", args=[worker.code]), {"auto_promote": "0"})
    worker.refresh_from_db()
    assert not worker.auto_promote
    second = built(worker, GREETER + "//2", functions=("hello", "bye"))
    worker.refresh_from_db()
    assert worker.production == first  # not live by itself
    panel = owner_client.get(reverse("deployment", args=[second.code])).content.decode()
    assert "Not serving production" in panel and reverse("promote", args=[second.code]) in panel

    confirm = owner_client.get(reverse("promote", args=[second.code])).content.decode()
    assert f"Promote {worker.name} to {second.short_id}?" in confirm
    assert first.short_id in confirm and "added: <code>bye</code>" in confirm
    assert owner_client.post(reverse("promote", args=[second.code])).status_code == 302
    worker.refresh_from_db()
    assert worker.production == second and worker.promoted_by == owner.username
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert f"promoted by {owner.username}" in page and "since <time" in page

    # Rolling back is the same act, named as what it is, and audited.
    back = owner_client.get(reverse("promote", args=[first.code])).content.decode()
    assert (
        f"Roll back {worker.name} to {first.short_id}?" in back
        and "removed: <code>bye</code>" in back
    )
    owner_client.post(reverse("promote", args=[first.code]))
    worker.refresh_from_db()
    assert worker.production == first
    hows = list(
        AuditEvent.objects.filter(action="production.set").values_list("details__how", flat=True)
    )
    assert sorted(hows) == ["promote", "rollback"]


def test_only_deployers_promote_and_outsiders_see_nothing(worker, viewer, outsider):
    first = built(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    second = built(worker, GREETER + "//2")
    url = reverse("promote", args=[second.code])
    assert client_for(Client, viewer).post(url).status_code == 403
    assert client_for(Client, outsider).get(url).status_code == 404
    assert client_for(Client, outsider).post(url).status_code == 404
    worker.refresh_from_db()
    assert worker.production == first
    toggle = reverse("worker-auto-promote", args=[worker.code])
    assert client_for(Client, viewer).post(toggle, {"auto_promote": "1"}).status_code == 403
    assert client_for(Client, outsider).post(toggle, {"auto_promote": "1"}).status_code == 404


def test_the_changes_between_two_deployments_show_files_packages_and_secret_names(
    owner_client, worker
):
    from deployments.deploy import snapshot_secrets
    from workers.models import WorkerSecret
    from workers.secrets import encrypt

    lock = '{"version": "5", "npm": {"ms@2.1.2": {"integrity": "x"}}}'
    WorkerSecret.objects.create(worker=worker, name="OLD", value_encrypted=encrypt("gone-value"))
    WorkerSecret.objects.create(worker=worker, name="KEPT", value_encrypted=encrypt("kept-1"))
    before = Deployment.objects.create(
        worker=worker, tenant=worker.tenant, entry="index.ts", lockfile=lock,
        files={"index.ts": "export const a = 1;\nexport const b = 2;\n", "old.ts": "x\n"},
        secrets_sealed=snapshot_secrets(worker),
    )  # fmt: skip
    WorkerSecret.objects.filter(worker=worker, name="OLD").delete()
    WorkerSecret.objects.filter(worker=worker, name="KEPT").update(
        value_encrypted=encrypt("kept-2")
    )
    WorkerSecret.objects.create(worker=worker, name="NEW", value_encrypted=encrypt("new-value"))
    after = Deployment.objects.create(
        worker=worker, tenant=worker.tenant, entry="index.ts", lockfile=lock.replace("2.1.2", "2.1.3"),
        files={"index.ts": "export const a = 1;\nexport const b = 3;\n", "new.ts": "y\n"},
        secrets_sealed=snapshot_secrets(worker),
    )  # fmt: skip
    page = owner_client.get(reverse("deployment-diff", args=[after.code])).content.decode()
    assert f'<option value="{before.code}" selected>' in page  # the one before, by default
    assert '<span class="diff-del">-export const b = 2;</span>' in page
    assert '<span class="diff-add">+export const b = 3;</span>' in page
    assert '<code>new.ts</code> <span class="tag change-added">added</span>' in page
    assert '<code>old.ts</code> <span class="tag change-removed">removed</span>' in page
    assert "<td><code>ms</code></td><td>2.1.2</td><td>2.1.3</td>" in page
    assert "Added: <code>NEW</code>" in page and "Removed: <code>OLD</code>" in page
    assert "New value: <code>KEPT</code>" in page
    assert "value" not in page.split("<h2>Secrets</h2>")[1].split("</section>")[0].replace(
        "New value", ""
    ).replace("values are never shown", "")
    for secret in ("gone-value", "kept-1", "kept-2", "new-value"):
        assert secret not in page
    other = Worker.objects.create(tenant=worker.tenant, name="other")
    elsewhere = Deployment.objects.create(worker=other, tenant=worker.tenant, source="x")
    url = reverse("deployment-diff", args=[after.code])
    assert owner_client.get(f"{url}?from={elsewhere.code}").status_code == 404
    assert owner_client.get(f"{url}?from=not-an-id").status_code == 404


# --- canaries ------------------------------------------------------------------------------


def calls(deployment, ok: int, failed: int):
    """Invocations as the runtime records them, `failed` of them errors."""
    now = timezone.now()
    Invocation.objects.bulk_create(
        Invocation(
            request_id=f"req_{uuid.uuid4().hex}", deployment=deployment,
            tenant=deployment.tenant, function="hello", status="ok" if n < ok else "error",
            status_code=200 if n < ok else 500, duration_ms=5.0 + n, started_at=now,
        )
        for n in range(ok + failed)
    )  # fmt: skip


def test_a_canary_is_started_stepped_up_promoted_and_audited_in_the_portal(
    owner_client, worker, owner
):
    stable = built(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    fresh = built(worker, GREETER + "//2")
    panel = owner_client.get(reverse("deployment", args=[fresh.code])).content.decode()
    assert reverse("canary-start", args=[fresh.code]) in panel
    form = owner_client.get(reverse("canary-start", args=[fresh.code])).content.decode()
    assert f"Start a canary of {fresh.short_id}?" in form and stable.short_id in form
    refused = owner_client.post(reverse("canary-start", args=[fresh.code]), {"percent": "0"})
    assert refused.status_code == 400  # the form says why; nothing changed
    worker.refresh_from_db()
    assert worker.canary is None
    owner_client.post(
        reverse("canary-start", args=[fresh.code]),
        {"percent": "10", "auto_rollback": "on", "margin": "5", "min_calls": "20"},
    )
    worker.refresh_from_db()
    assert (worker.production, worker.canary, worker.canary_percent) == (stable, fresh, 10)
    assert worker.canary_by == owner.username and worker.canary_auto_rollback

    calls(stable, ok=9, failed=1)
    calls(fresh, ok=4, failed=0)
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "takes <strong>10%</strong> of production traffic" in page
    # Both sides' figures since the start, refreshed by HTMX until the canary ends.
    assert "Production " + stable.short_id in page and "Canary " + fresh.short_id in page
    assert "10.0%" in page and "0.0%" in page and 'hx-trigger="every 5s"' in page

    change = reverse("worker-canary-change", args=[worker.code])
    stepped = owner_client.post(
        change, {"action": "percent", "percent": "50"}, HTTP_HX_REQUEST="true"
    )
    assert "takes <strong>50%</strong>" in stepped.content.decode()
    owner_client.post(change, {"action": "promote"})
    worker.refresh_from_db()
    assert worker.production == fresh and worker.canary is None
    polled = owner_client.get(reverse("worker-canary", args=[worker.code]), HTTP_HX_REQUEST="true")
    assert polled.status_code == 286  # nothing in flight: polling stops
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["canary.start", "canary.percent", "canary.promote"]
    # The history keeps every step, one generation each.
    hows = list(worker.production_changes.order_by("generation").values_list("how", flat=True))
    assert hows[-3:] == ["canary.start", "canary.percent", "canary.promote"]


def test_a_canary_that_fails_more_than_production_rolls_back_by_itself(owner_client, worker):
    stable = built(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    bad = built(worker, GREETER + "//bad")
    start_canary(worker, bad, 20, "dev", auto_rollback=True, margin=5.0, min_calls=10)
    calls(stable, ok=95, failed=5)  # 5 %
    calls(bad, ok=8, failed=1)  # 11 %, but only 9 calls: too few to judge
    assert check_canaries() == []
    calls(bad, ok=0, failed=3)  # now 4 of 12 failed: 33 %, over 5 % + 5 points
    assert check_canaries() == [worker.name]
    worker.refresh_from_db()
    assert worker.production == stable and worker.canary is None
    assert "Rolled back by itself" in worker.canary_note and "33.3%" in worker.canary_note
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "Rolled back by itself" in page
    event = AuditEvent.objects.get(action="canary.rollback")
    assert (
        event.actor_label == "automatic canary rollback"
        and event.details["deployment"] == bad.short_id
    )


def test_a_canary_within_the_margin_stays(worker):
    stable = built(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    fine = built(worker, GREETER + "//fine")
    start_canary(worker, fine, 20, "dev", auto_rollback=True, margin=5.0, min_calls=10)
    calls(stable, ok=90, failed=10)
    calls(fine, ok=17, failed=3)  # 15 %: within 10 % + 5 points
    assert check_canaries() == []
    worker.refresh_from_db()
    assert worker.canary == fine


def test_canary_pages_are_for_deployers_and_hidden_from_outsiders(worker, viewer, outsider):
    built(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    fresh = built(worker, GREETER + "//2")
    for user, status in ((viewer, 403), (outsider, 404)):
        client = client_for(Client, user)
        start = reverse("canary-start", args=[fresh.code])
        assert client.post(start, {"percent": "10"}).status_code == status
        change = reverse("worker-canary-change", args=[worker.code])
        assert client.post(change, {"action": "cancel"}).status_code == status
    assert (
        client_for(Client, outsider).get(reverse("canary-start", args=[fresh.code])).status_code
        == 404
    )
    assert (
        client_for(Client, outsider).get(reverse("worker-canary", args=[worker.code])).status_code
        == 404
    )
    worker.refresh_from_db()
    assert worker.canary is None


# --- releases of several workers -----------------------------------------------------------


def test_a_release_switches_several_workers_at_once_and_reverts_them_together(
    owner_client, tenant, owner
):
    front = Worker.objects.create(tenant=tenant, name="front")
    back = Worker.objects.create(tenant=tenant, name="back")
    f1, b1 = built(front), built(back)
    for w in (front, back):
        Worker.objects.filter(pk=w.pk).update(auto_promote=False)
    f2, b2 = built(front, GREETER + "//2"), built(back, GREETER + "//2")
    listing = owner_client.get(reverse("releases")).content.decode()
    assert f2.short_id in listing and b2.short_id in listing
    made = owner_client.post(
        reverse("releases"),
        {"name": "v2", f"w{front.pk}": str(f2.code), f"w{back.pk}": str(b2.code)},
    )
    release = Release.objects.get(name="v2")
    assert made.status_code == 302 and release.items.count() == 2
    page = owner_client.get(reverse("release", args=[release.code])).content.decode()
    assert "Promote: switch these 2 workers together" in page and "what changes" in page
    tenant.refresh_from_db()
    before = tenant.generation
    owner_client.post(reverse("release-act", args=[release.code, "promote"]))
    front.refresh_from_db(), back.refresh_from_db(), tenant.refresh_from_db()
    assert (front.production, back.production) == (f2, b2)
    # One generation for both: no moment when one switched and the other not.
    assert tenant.generation == before + 1
    assert {c.generation for c in ProductionChange.objects.filter(how="release v2")} == {
        tenant.generation
    }
    assert serving_at(front, before).production == f1 and serving_at(back, before).production == b1
    owner_client.post(reverse("release-act", args=[release.code, "revert"]))
    front.refresh_from_db(), back.refresh_from_db()
    assert (front.production, back.production) == (f1, b1)
    release.refresh_from_db()
    assert release.status == "reverted" and release.reverted_by == owner.username
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["release.create", "release.promote", "release.revert"]


def test_a_release_with_a_deployment_that_is_not_ready_changes_nothing(owner_client, tenant):
    front = Worker.objects.create(tenant=tenant, name="front")
    back = Worker.objects.create(tenant=tenant, name="back")
    f1, b1 = built(front), built(back)
    release = Release.objects.create(tenant=tenant, name="broken")
    f2 = built(front, GREETER + "//2")
    b2 = built(back, GREETER + "//2")
    ReleaseItem.objects.create(release=release, worker=front, deployment=f2)
    ReleaseItem.objects.create(release=release, worker=back, deployment=b2)
    Deployment.objects.filter(pk=b2.pk).update(status="error")
    Worker.objects.filter(pk__in=[front.pk, back.pk]).update(production=None)
    Worker.objects.filter(pk=front.pk).update(production=f1)
    Worker.objects.filter(pk=back.pk).update(production=b1)
    answer = owner_client.post(reverse("release-act", args=[release.code, "promote"]))
    assert answer.status_code == 409 and "only ready deployments serve" in answer.content.decode()
    front.refresh_from_db(), back.refresh_from_db()
    assert (front.production, back.production) == (f1, b1)  # neither moved


def test_release_pages_are_hidden_from_outsiders_and_closed_to_viewers(tenant, viewer, outsider):
    front = Worker.objects.create(tenant=tenant, name="front")
    release = Release.objects.create(tenant=tenant, name="spring-launch")
    ReleaseItem.objects.create(release=release, worker=front, deployment=built(front))
    other = client_for(Client, outsider)
    assert other.get(reverse("release", args=[release.code])).status_code == 404
    for act in ("promote", "revert"):
        assert other.post(reverse("release-act", args=[release.code, act])).status_code == 404
        assert (
            client_for(Client, viewer)
            .post(reverse("release-act", args=[release.code, act]))
            .status_code
            == 403
        )
    assert "spring-launch" not in other.get(reverse("releases")).content.decode()
    release.refresh_from_db()
    assert release.status == "draft"
