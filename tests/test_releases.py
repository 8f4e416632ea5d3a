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
