"""Every main page of the portal at a phone's width (390 px) and a laptop's (1280 px): the
page never scrolls sideways (tables scroll in their own box, long names wrap, the top bar's
links fold into a menu). The pages hold what makes them wide in real use: long names, ids,
URLs and error messages. Screenshots are kept with the test services' logs."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from kv import store
from kv.models import Namespace
from releases.models import Release, ReleaseItem
from runs.models import Run
from telemetry.models import Invocation, LogDrain, LogEntry, UsageDay
from tenancy.events import TYPES
from tenancy.models import AuditEvent, Delivery, EventSubscription
from workers.api_keys import issue_key
from workers.models import Domain, Worker

from .conftest import LOG_DIR
from .helpers import ready_in_production
from .test_browser import signed_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
LONG = "a-rather-long-name-that-does-not-break-anywhere-" * 3


@pytest.fixture
def busy_tenant(tenant, owner):
    """A tenant with some of everything, each with long names and messages."""
    worker = Worker.objects.create(tenant=tenant, name="checkout-service-eu-west-1", public=True)
    deployment = ready_in_production(worker)
    now = timezone.now()
    for n in range(3):
        Invocation.objects.create(
            request_id=f"req_{'f' * 32}{n}", deployment=deployment, tenant=tenant,
            function="hello", status="error", status_code=500, duration_ms=12.5,
            error_message=f"TypeError: {LONG}", started_at=now - timedelta(seconds=n),
        )  # fmt: skip
        LogEntry.objects.create(
            tenant=tenant, deployment=deployment, request_id=f"req_{'f' * 32}{n}", seq=0,
            function="hello", timestamp=now, level="error", message=f"failed: {LONG}",
        )  # fmt: skip
    run = Run.objects.create(
        tenant=tenant, worker=worker, deployment=deployment, function="hello",
        payload='{"order": "' + LONG + '"}', status=Run.Status.DEAD,
        error_code="function_error", error_message=LONG, attempts=3, finished_at=now,
    )  # fmt: skip
    release = Release.objects.create(tenant=tenant, name="spring-release-" + "x" * 60)
    ReleaseItem.objects.create(release=release, worker=worker, deployment=deployment)
    issue_key(tenant, "GitHub Actions deploy key for " + LONG[:60], ["deploy", "read"])
    LogDrain.objects.create(
        tenant=tenant, url=f"https://logs.example.com/{LONG}/ingest", secret="s"
    )
    EventSubscription.objects.create(
        tenant=tenant, url=f"https://hooks.example.com/{LONG}", secret="whsec_c2VjcmV0",
        types=list(TYPES),
    )  # fmt: skip
    deployment.tell("deployment.ready")
    domain = Domain.objects.create(tenant=tenant, hostname=f"{'very-long-label-' * 3}x.customer.test",
                                   token="f" * 32, last_error=LONG)  # fmt: skip
    domain.routes.create(worker=worker, prefix=f"/{'deeply/nested/' * 5}")
    namespace = Namespace.objects.create(tenant=tenant, name="sessions-of-a-long-name")
    store.put(namespace, f"user/{LONG}"[:500], LONG.encode() * 3, metadata={"note": LONG[:500]})
    namespace.bindings.create(worker=worker, name="SESSIONS")
    Delivery.objects.update(status="failed", status_code=500, attempts=10, answer=LONG * 3,
                            error="Answered 500.")  # fmt: skip
    for n in range(3):
        UsageDay.objects.create(
            tenant=tenant, day=date.today() - timedelta(days=n), invocations=123456789,
            gb_seconds=12345.678, build_seconds=654.3, log_lines=987654321, log_bytes=10**10,
            runs=4321, cpu_seconds=9876.5,
        )  # fmt: skip
    AuditEvent.objects.create(
        tenant=tenant, tenant_slug=tenant.slug, actor_label=owner.username,
        action="worker.deploy", target=LONG, details={"note": LONG}, ip="2001:db8::1",
    )  # fmt: skip
    return worker, deployment, run, release


def pages(worker, deployment, run, release) -> list[str]:
    w, d = f"/workers/{worker.code}", f"/deployments/{deployment.code}"
    namespace = Namespace.objects.get(tenant=worker.tenant)
    return [
        "/", f"{w}/", f"{w}/deployments/", f"{w}/invocations/", f"{w}/runs/", f"{w}/logs/",
        f"{w}/settings/", f"{d}/", f"{d}/diff/", "/runs/", f"/runs/{run.code}/", "/releases/",
        f"/releases/{release.code}/", "/keys/", "/members/", "/audit/", "/usage/", "/drains/",
        "/events/", "/time-zone/", f"/invocations/req_{'f' * 32}0/", "/workers/new/",
        "/cli/", "/cli/approve/", "/domains/", "/storage/", f"/storage/{namespace.code}/",
    ]  # fmt: skip


WIDEST = """[...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 || e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === 'visible')
  .slice(-3).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def widest(page) -> list[str]:
    """The innermost elements that reach past the screen's edge (for the failure message)."""
    return page.evaluate(WIDEST)


@pytest.mark.parametrize("width", [390, 1280])
def test_no_main_page_scrolls_sideways(live_server, owner, busy_tenant, width):
    checked, problems = [], []
    paths = pages(*busy_tenant)  # before the browser: its loop makes the ORM refuse
    with signed_in(live_server, owner, viewport={"width": width, "height": 900}) as page:
        for path in paths:
            answer = page.goto(f"{live_server.url}{path}")  # styles and layout are in by "load"
            assert answer.status == 200, path
            # Partials the page loads itself (charts, panels) are in once htmx has settled.
            page.wait_for_function("!document.querySelector('.htmx-request, .htmx-settling')")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                problems.append(f"{path}: {overflow}px wider than {width}px: {widest(page)}")
            checked.append(path)
        name = "phone" if width == 390 else "laptop"
        page.goto(f"{live_server.url}/workers/{busy_tenant[0].code}/")
        page.screenshot(path=str(LOG_DIR / f"worker-{name}.png"), full_page=True)
        # Every tab of the worker in sight, none scrolled away past the edge.
        tabs = page.locator("nav.tabs a")
        boxes = [tabs.nth(i).bounding_box() for i in range(tabs.count())]
        assert len(boxes) == 6 and all(b and b["x"] >= 0 and b["x"] + b["width"] <= width
                                       for b in boxes), boxes  # fmt: skip
        if width == 1280:  # the top bar's links on one line
            links = page.locator("header nav.links a")
            rows = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}
            assert len(rows) == 1, rows
        runs_link = page.locator("header nav.links >> text=Runs")
        if width == 390:
            # The top bar's links are behind its menu; one tap shows them.
            assert not runs_link.is_visible()
            page.click("header label.menu-button")
            assert runs_link.is_visible()
        else:
            assert (
                runs_link.is_visible() and not page.locator("header label.menu-button").is_visible()
            )
        runs_link.click()
        page.wait_for_url(f"{live_server.url}/runs/")
    assert problems == []
    assert len(checked) == 27
