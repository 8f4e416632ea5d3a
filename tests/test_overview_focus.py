"""The Overview calls production first: its panel, invoke form and curl line belong to what
production serves; the latest deployment (a preview, a failed build) is one click away."""

import pytest
from django.urls import reverse

from deployments.models import Deployment

from .helpers import GREETER, create_deployment, ready_in_production

pytestmark = pytest.mark.django_db


def test_the_overview_shows_production_and_offers_the_newer_preview(owner_client, worker):
    production = ready_in_production(worker)
    failed = create_deployment(worker, GREETER + "\n// broken\n")
    failed.transition(Deployment.Status.QUEUED, Deployment.Status.ERROR, error_message="bad")
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert f"<h2>Production: {production.short_id}</h2>" in page
    assert f'action="{reverse("invoke", args=[production.code])}"' in page
    assert f"The latest deployment, {failed.short_id}, is not production (error)" in page
    latest = owner_client.get(
        reverse("worker", args=[worker.code]) + "?show=latest"
    ).content.decode()
    assert f"Latest deployment: {failed.short_id}, a preview" in latest
    assert f"Back to production ({production.short_id})" in latest


def test_without_production_the_overview_shows_the_latest(owner_client, worker):
    building = create_deployment(worker, GREETER)
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "<h2>Latest deployment</h2>" in page and building.short_id in page


def test_when_a_build_ends_every_part_showing_production_is_refreshed(owner_client, worker):
    """The worker page polls the building deployment's panel; its last answer also swaps in
    the production section, the recent list and the secrets banner (out of band), so no
    two parts of the page disagree about what production serves."""
    from releases.production import auto_promote

    old = ready_in_production(worker)
    new = create_deployment(worker, GREETER + "\n// new\n")
    new.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    new.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    auto_promote(new)
    url = reverse("deployment-panel", args=[new.code]) + "?on=worker"
    answer = owner_client.get(url, HTTP_HX_REQUEST="true")
    assert answer.status_code == 286  # the poll stops
    page = answer.content.decode()
    for part in ("production", "recent", "pending"):
        assert f'id="{part}-{worker.code}"' in page, part
    assert page.count('hx-swap-oob="true"') == 3
    recent = page[page.index(f'id="recent-{worker.code}"') :]
    recent = recent[: recent.index("</section>")]
    # The new deployment is the one marked production in the refreshed list.
    new_row = recent[recent.index(new.short_id) :].split("</tr>")[0]
    old_row = recent[recent.index(old.short_id) :].split("</tr>")[0]
    assert "production" in new_row and "production" not in old_row
