"""The portal in a real browser (Debian's Chromium driven by Playwright): copy buttons copy
commands that work when pasted into a shell, and the worker page is usable at desktop and
phone widths (screenshots kept with the test services' logs)."""

import contextlib
import json
import os
import subprocess

import pytest

from workers.models import Worker

from .conftest import LOG_DIR, make_operator, totp_code_to_type
from .helpers import GREETER, build_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@contextlib.contextmanager
def signed_in(live_server, user, lands="/", **context):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("BROWSER_PATH", "/usr/bin/chromium"), args=ARGS
        )
        try:
            page = browser.new_context(**context).new_page()
            page.goto(f"{live_server.url}/login/")
            page.fill("input[name=login]", user.username)
            page.fill("input[name=password]", "pw-123456")
            page.click("main button[type=submit]")
            if getattr(user, "totp_secret", None):  # an operator: the authenticator app's code
                page.wait_for_url("**/accounts/2fa/authenticate/")
                page.fill("input[name=code]", totp_code_to_type(user.totp_secret))
                page.click("main button[type=submit]")
            page.wait_for_url(f"{live_server.url}{lands}")
            yield page
        finally:
            browser.close()


def test_a_copied_curl_line_runs_as_copied(live_server, runtime, owner, tenant):
    worker = Worker.objects.create(tenant=tenant, name="copied", public=True)
    deployment = build_now(worker, GREETER)
    context = {"permissions": ["clipboard-read", "clipboard-write"]}
    with signed_in(live_server, owner, **context) as page:
        page.goto(f"{live_server.url}/deployments/{deployment.code}/")
        page.click("pre.curl + clipboard-copy")
        copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"curl -X POST {deployment.url}/api/invoke/hello")
    ran = subprocess.run(["bash", "-c", copied + " --silent"], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["result"] == {"greeting": "Hello, world!"}


@pytest.mark.parametrize("width", [1280, 390])
def test_the_worker_page_fits_the_screen(live_server, owner, tenant, width):
    worker = Worker.objects.create(tenant=tenant, name="looked-at")
    from .helpers import create_deployment

    create_deployment(worker, GREETER)
    viewport = {"width": width, "height": 900}
    with signed_in(live_server, owner, viewport=viewport) as page:
        tabs = (("", "Production URL"), ("deployments/", "Deploy a new version"),
                ("invocations/", "No invocations"), ("runs/", "Dead letters"))  # fmt: skip
        for tab, shown in tabs:
            page.goto(f"{live_server.url}/workers/{worker.code}/{tab}")
            page.wait_for_selector("h1:has-text('looked-at')")
            name = tab.strip("/") or "overview"
            page.screenshot(path=str(LOG_DIR / f"worker-{name}-{width}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{tab or 'overview'}: {overflow}px wider than {width}px"
            assert page.locator(f"text={shown}").first.is_visible(), shown
        # The tabs switch in place (boosted links) and the back button returns.
        page.click("nav.tabs >> text=Settings")
        page.wait_for_selector("text=Who may call it")
        assert page.url.endswith(f"/workers/{worker.code}/settings/")
        page.go_back()
        page.wait_for_selector("text=Dead letters")


def test_the_editor_highlights_numbers_lines_marks_problems_and_deploys_every_tab(
    live_server, runtime, owner, tenant
):
    from deployments.models import Deployment

    from .helpers import build_files

    worker = Worker.objects.create(tenant=tenant, name="edited", public=True)
    index = 'import { total } from "./lib/sum.ts";\nexport async function f() { return total([1, 2]); }\n'
    broken = 'export function total(xs: number[]): number {\n  return xs.join("+");\n}\n'
    failed = build_files(worker, {"index.ts": index, "lib/sum.ts": broken})
    assert failed.status == "error" and failed.diagnostics[0]["file"] == "lib/sum.ts"
    with signed_in(live_server, owner, viewport={"width": 1280, "height": 900}) as page:
        page.goto(f"{live_server.url}/workers/{worker.code}/deployments/")
        # TypeScript highlighted, with line numbers, in the entry's tab.
        page.wait_for_selector("#panel-0 code-input.code-input_loaded .token.keyword")
        assert page.locator("#panel-0 .line-numbers-rows > span").count() >= 2
        assert not page.locator("#panel-1").is_visible()
        page.click("label[for=tab-1]")  # the second file's tab, with its problem
        assert page.locator("#panel-1").is_visible() and not page.locator("#panel-0").is_visible()
        assert "line 2, column 3: TS2322" in page.locator("#panel-1 .diagnostics").inner_text()
        marked = page.evaluate(
            "getComputedStyle(document.querySelector('#editor-1 .line-numbers-rows > span:nth-child(2)'),"
            " '::before').backgroundColor"
        )
        assert marked == "rgb(254, 202, 202)"  # line 2 is marked, in the gutter
        page.screenshot(path=str(LOG_DIR / "editor-1280.png"), full_page=True)
        # Fix it in the editor (typing into the highlighted textarea) and deploy.
        area = page.locator("#panel-1 textarea")
        area.fill(broken.replace('xs.join("+")', "xs.reduce((a, b) => a + b, 0)"))
        page.click("main form button[type=submit]:has-text('Deploy')")
        page.wait_for_url(f"{live_server.url}/workers/{worker.code}/")
    newest = Deployment.objects.filter(worker=worker).first()
    assert newest.pk != failed.pk and "xs.reduce" in newest.files["lib/sum.ts"]
    assert newest.files["index.ts"] == index


def test_time_zone_pending_secrets_suspension_and_the_operators_home(
    live_server, runtime, owner, tenant, monkeypatch
):
    # The test changes records while the browser is open; Playwright's sync API runs an event
    # loop in this thread, which Django's guard takes for async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    from deployments.models import Deployment
    from workers.models import WorkerSecret
    from workers.secrets import encrypt

    worker = Worker.objects.create(tenant=tenant, name="watched", public=True)
    serving = build_now(worker, GREETER)
    with signed_in(live_server, owner) as page:
        # One way to show time, in the zone the user picks (from the zone's name in the bar).
        page.goto(f"{live_server.url}/workers/{worker.code}/")
        assert "UTC" in page.locator("main time").first.inner_text()
        page.click("header.topbar >> text=UTC")
        page.select_option("select[name=time_zone]", "Asia/Tokyo")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{live_server.url}/workers/{worker.code}/")
        assert "JST" in page.locator("main time").first.inner_text()
        # A secret changed after the deploy: said, with the way to act on it.
        WorkerSecret.objects.create(worker=worker, name="TOKEN", value_encrypted=encrypt("t"))
        page.reload()
        assert "changed since: TOKEN" in page.locator(".banner.pending").inner_text()
        page.click(".banner.pending >> text=Redeploy now")
        page.wait_for_url(f"{live_server.url}/workers/{worker.code}/")
        assert Deployment.objects.filter(worker=worker).exclude(pk=serving.pk).count() == 1
        # Suspended: a banner on every page, and writes refused with the reason.
        type(tenant).objects.filter(pk=tenant.pk).update(status="suspended")
        page.goto(f"{live_server.url}/workers/{worker.code}/deployments/")
        assert "is suspended" in page.locator("p.banner.error").inner_text()
        assert page.locator("text=Deploy a new version").count() == 0  # no form to write with
        token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        answer = page.request.post(  # and a write sent anyway is refused, saying why
            f"{live_server.url}/workers/{worker.code}/deploy/",
            form={"source": GREETER}, headers={"X-CSRFToken": token},
        )  # fmt: skip
        assert answer.status == 403 and "suspended" in answer.text()
        assert Deployment.objects.filter(worker=worker).count() == 2
    operator = make_operator("ops", is_superuser=False)
    # An operator in no tenant lands on the operators' home, never a dead end.
    with signed_in(live_server, operator, lands="/operators/") as page:
        assert "Tenants" in page.locator("main").inner_text()
        assert "acme" in page.locator("main").inner_text()


def test_a_promote_in_another_tab_reaches_every_part_of_the_open_page(
    live_server, owner, tenant, monkeypatch
):
    """Two tabs on one worker: a promote confirmed in the second reaches the first within a
    few seconds, and its production panel, its heading, its invoke form and its recent list
    all name the new production (none left saying the old one)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from deployments.models import Deployment

    from .helpers import create_deployment, ready_in_production

    worker = Worker.objects.create(tenant=tenant, name="two-tabs")
    old = ready_in_production(worker)
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    new = create_deployment(worker, GREETER + "\n// new\n")
    new.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    new.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    with signed_in(live_server, owner) as first:
        first.goto(f"{live_server.url}/workers/{worker.code}/")
        assert first.locator(f"h2:has-text('Production: {old.short_id}')").is_visible()
        second = first.context.new_page()
        second.goto(f"{live_server.url}/deployments/{new.code}/promote/")
        second.click(f"main button:has-text('Promote to {new.short_id}')")
        second.wait_for_url(f"{live_server.url}/workers/{worker.code}/")
        # The first tab was not touched: it asks, and every part moves together.
        first.wait_for_selector(f"h2:has-text('Production: {new.short_id}')", timeout=10_000)
        production = first.locator(f"#production-{worker.code}").inner_text()
        assert f"Serves {new.short_id}" in production
        row = first.locator(f"#recent-{worker.code} tr", has_text=new.short_id)
        assert "production" in row.inner_text()
        old_row = first.locator(f"#recent-{worker.code} tr", has_text=old.short_id)
        assert "production" not in old_row.inner_text()
        form = first.locator(f"#focus-{worker.code} form.invoke")
        assert form.get_attribute("action") == f"/deployments/{new.code}/invoke/"
        assert first.locator(f"#state-{worker.code}").count() == 1  # still asking
