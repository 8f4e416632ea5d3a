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
