"""Preview and production: auto-promote on or off, promote and roll back from the portal
with a confirmation that shows what changes, who did it and since when."""

from django.test import Client
from django.urls import reverse

from deployments.models import Deployment
from workers.models import Worker
from workers_portal.models import AuditEvent

from .conftest import client_for
from .helpers import GREETER, create_deployment

S = Deployment.Status


def built(worker, source=GREETER, functions=("hello",)):
    """A deployment brought to ready the way the build task does (auto-promote included)."""
    deployment = create_deployment(worker, source)
    deployment.transition(S.QUEUED, S.BUILDING)
    deployment.transition(S.BUILDING, S.READY, functions=list(functions))
    deployment.worker.promote(deployment)
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
