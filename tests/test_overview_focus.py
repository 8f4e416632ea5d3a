"""The Overview calls production first: its panel, invoke form and curl line belong to what
production serves; the latest deployment (a preview, a failed build) is one click away."""

import re

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


def state_url(page: str, key: str) -> str:
    """The URL the page asks whether anything changed (its hidden state element)."""
    import html

    found = re.search(rf'id="state-{key}" hidden hx-get="([^"]+)"', page)
    assert found, "the page does not ask whether it changed"
    return html.unescape(found.group(1))


def part(page: str, element_id: str) -> str:
    """One element of an answer, from its id to the end of its line."""
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("\n", start)] if "\n" in page[start:] else page[start:]


def preview_of(worker, marker):
    preview = create_deployment(worker, GREETER + f"\n// {marker}\n")
    preview.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    preview.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    return preview


def test_a_canary_step_made_elsewhere_reaches_every_part_of_the_overview(owner_client, worker):
    """Another tab (or the canary's own rules) moves the canary from 10% to 50%: the page
    open on the latest deployment learns it on its next question, and the canary panel and
    the latest deployment's role line say 50% together; the invoke form is left as typed."""
    from releases.production import start_canary
    from workers.models import Worker

    ready_in_production(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    preview = preview_of(worker, "canary")
    worker.refresh_from_db()
    start_canary(worker, preview, 10, "dev")
    page = owner_client.get(reverse("worker", args=[worker.code]) + "?show=latest")
    url = state_url(page.content.decode(), worker.code)
    quiet = owner_client.get(url, HTTP_HX_REQUEST="true")
    assert quiet.status_code == 204  # nothing changed: the page is left alone

    worker.refresh_from_db()
    start_canary(worker, preview, 50, "someone in another tab")
    answer = owner_client.get(url, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "<strong>50%</strong>" in text  # the canary panel
    assert "Canary: takes 50% of production traffic" in part(text, f"role-{preview.code}")
    assert "10%" not in text.replace(">10%</button>", "")  # only the step buttons say 10%
    assert f'id="focus-{worker.code}"' not in text  # the invoke form stays as typed
    # The next question carries the new state: quiet again.
    assert owner_client.get(state_url(text, worker.code), HTTP_HX_REQUEST="true").status_code == 204


def test_a_promote_made_elsewhere_moves_every_part_of_the_overview_together(owner_client, worker):
    from releases.production import set_production
    from workers.models import Worker

    old = ready_in_production(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    new = preview_of(worker, "new")
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert f"<h2>Production: {old.short_id}</h2>" in page
    url = state_url(page, worker.code)

    worker.refresh_from_db()
    set_production(worker, new, "someone in another tab")
    text = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    for element in ("production", "recent", "pending", "focus", "canary-slot"):
        tag = re.search(rf'<[^>]*id="{element}-{worker.code}"[^>]*>', text)
        assert tag and 'hx-swap-oob="true"' in tag.group(0), element
        assert text.count(f'id="{element}-{worker.code}"') == 1, element  # swapped once
    assert f'Serves <a href="{reverse("deployment", args=[new.code])}">{new.short_id}</a>' in text
    assert f"<h2>Production: {new.short_id}</h2>" in text
    # The invoke form now calls the new production.
    assert f'action="{reverse("invoke", args=[new.code])}"' in text
    recent = text[text.index(f'id="recent-{worker.code}"') :]
    new_row = recent[recent.index(new.short_id) :].split("</tr>")[0]
    old_row = recent[recent.index(old.short_id) :].split("</tr>")[0]
    assert "production" in new_row and "production" not in old_row


def test_a_deployment_page_learns_it_was_rolled_back_elsewhere(owner_client, worker):
    from releases.production import set_production

    old = ready_in_production(worker)
    new = preview_of(worker, "new")
    from releases.production import auto_promote

    auto_promote(new)
    page = owner_client.get(reverse("deployment", args=[new.code])).content.decode()
    assert "This deployment serves the worker's production URL" in page
    url = state_url(page, new.code)
    assert owner_client.get(url, HTTP_HX_REQUEST="true").status_code == 204
    worker.refresh_from_db()
    set_production(worker, old, "someone in another tab")
    text = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    role = part(text, f"role-{new.code}")
    assert 'hx-swap-oob="true"' in role and "Not serving production" in role
