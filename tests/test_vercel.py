"""The Vercel back end against a stand-in of the Vercel API (a real HTTP server that checks
every request and answer against Vercel's OpenAPI description): the generated project, the
client, and submit + poll through real Celery workers."""

import json
import time

import httpx
import pytest

from deployments import vercel_client as api
from deployments.deploy import deploy
from deployments.generator import NotForNext, generate, ingest_token, invoke_secret
from deployments.models import Deployment
from deployments.tasks import build_deployment, poll_deployment, sweep_stuck_deployments
from telemetry.models import LogEntry
from workers.models import Worker, WorkerSecret
from workers.secrets import encrypt

from .conftest import wait_for
from .helpers import GREETER

S = Deployment.Status
pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # real Deno builds


def vercel_worker(tenant, name="greeter") -> Worker:
    tenant.backend = "vercel"
    tenant.save()
    return Worker.objects.create(tenant=tenant, name=name)


def settled(deployment: Deployment, timeout: float = 60) -> Deployment:
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).is_terminal, timeout, "the build")
    deployment.refresh_from_db()
    return deployment


# --- the generated project ---------------------------------------------------------------------


def test_a_program_is_carried_with_its_packages_pinned(tenant):
    worker = vercel_worker(tenant)
    lock = {
        "version": "5", "specifiers": {"npm:zod@^3": "3.23.8", "npm:ms@2.1.3": "2.1.3"},
        "npm": {"zod@3.23.8": {"integrity": "sha512-z"}, "ms@2.1.3": {"integrity": "sha512-m"}},
    }  # fmt: skip
    files = {
        "index.ts": 'import { z } from "npm:zod@^3";\nimport { x } from "./lib/x.ts";\n'
        'import ms from "npm:ms@2.1.3";\nimport { Buffer } from "node:buffer";\n'
        "export async function f() { return [z, x, ms, Buffer]; }\n"
        "export default { fetch: () => new Response('hi') };\n",
        "lib/x.ts": 'export const x = await import("npm:zod@^3/v4");\n',
    }
    deployment = Deployment.objects.create(
        worker=worker, files=files, entry="index.ts", lockfile=json.dumps(lock), backend="vercel"
    )
    generated = generate(deployment, ["f"], http=True)
    assert generated["lib/worker/index.ts"].startswith(
        'import { z } from "zod";\nimport { x } from "./lib/x.ts";\nimport ms from "ms";\n'
        'import { Buffer } from "node:buffer";'
    )
    assert generated["lib/worker/lib/x.ts"] == 'export const x = await import("zod/v4");\n'
    assert generated["lib/worker.ts"] == (
        'export * from "./worker/index.ts";\nexport { default } from "./worker/index.ts";\n'
    )
    dependencies = json.loads(generated["package.json"])["dependencies"]
    assert dependencies["zod"] == "3.23.8" and dependencies["ms"] == "2.1.3"
    installed = json.loads(generated["package-lock.json"])["packages"]
    assert installed["node_modules/zod"]["integrity"] == "sha512-z"
    assert installed[""]["dependencies"] == dependencies  # what npm ci checks
    assert json.loads(generated["lib/deployment.json"])["http"] is True
    jsr = {"index.ts": 'import { join } from "jsr:@std/path@1";\nexport async function f() {}\n'}
    deployment.files = jsr
    with pytest.raises(NotForNext, match="jsr: and https: imports run on this platform's own"):
        generate(deployment, ["f"])


def test_the_workers_limits_become_the_functions_or_the_build_says_why_not(tenant, settings):
    worker = vercel_worker(tenant)
    worker.timeout_seconds, worker.memory_mb = 30, 512
    worker.save()
    deployment = Deployment.objects.create(worker=worker, source=GREETER, backend="vercel")
    generated = generate(deployment, ["hello"])
    for route in ("app/api/invoke/[fn]/route.ts", "app/[[...path]]/route.ts"):
        assert "export const maxDuration = 35;" in generated[route]
    functions = json.loads(generated["vercel.json"])["functions"]
    assert functions["app/api/invoke/[fn]/route.ts"] == {"memory": 768}
    settings.VERCEL_MAX_DURATION_SECONDS = 20
    with pytest.raises(NotForNext, match=r"timeout \(30 s\) is longer than a function may run "
                                         r"on this Vercel plan \(15 s at most\)"):  # fmt: skip
        generate(deployment, ["hello"])
    settings.VERCEL_MAX_DURATION_SECONDS, settings.VERCEL_MAX_MEMORY_MB = 300, 512
    with pytest.raises(NotForNext, match=r"memory \(512 MB\) and the function's server"):
        generate(deployment, ["hello"])


def test_the_workers_settings_say_what_differs_on_vercel(tenant, owner, settings):
    from django.test import Client

    from .conftest import client_for

    worker = vercel_worker(tenant)
    page = client_for(Client, owner).get(f"/workers/{worker.code}/settings/").content.decode()
    assert "Runs on Vercel" in page and "Outbound requests are not filtered" in page
    assert "Canaries are not available" in page
    tenant.backend = ""
    tenant.save()
    settings.DEFAULT_BACKEND = "local"
    page = client_for(Client, owner).get(f"/workers/{worker.code}/settings/").content.decode()
    assert "Runs on Vercel" not in page


def test_the_generated_project_is_complete_and_deterministic(tenant, settings):
    worker = vercel_worker(tenant)
    WorkerSecret.objects.create(
        worker=worker, name="API_SECRET", value_encrypted=encrypt("s3cr3t-value")
    )
    from deployments.deploy import snapshot_secrets

    deployment = Deployment.objects.create(
        worker=worker, source=GREETER, backend="vercel", secrets_sealed=snapshot_secrets(worker)
    )
    files = generate(deployment, ["hello"])
    assert sorted(files) == [
        "app/[[...path]]/route.ts",
        "app/api/invoke/[fn]/route.ts",
        "lib/bindings.ts",
        "lib/context.d.ts",
        "lib/contract.json",
        "lib/deployment.json",
        "lib/http.ts",
        "lib/invoke.ts",
        "lib/peers.ts",
        "lib/step.ts",
        "lib/steps.ts",
        "lib/worker.ts",
        "lib/worker/index.ts",
        "next-env.d.ts",
        "next.config.ts",
        "package-lock.json",
        "package.json",
        "tsconfig.json",
        "vercel.json",
    ]
    assert files == generate(Deployment.objects.get(pk=deployment.pk), ["hello"])  # byte-identical
    assert files["lib/worker/index.ts"] == GREETER
    assert files["lib/worker.ts"] == 'export * from "./worker/index.ts";\n'
    package = json.loads(files["package.json"])
    # Only what it uses: retries and async calls are the platform's durable runs.
    assert package["dependencies"] == {"next": "16.4.6", "react": "19.3.1", "react-dom": "19.3.1"}
    assert "(worker as any)[fn]" in files["lib/step.ts"]
    config = json.loads(files["lib/deployment.json"])
    assert config["functions"] == ["hello"]
    assert config["ingest"]["token"] == ingest_token(deployment)
    # Who may call it is asked at call time, with its own credential: no invocation secret, nor
    # its digest, nor the worker's visibility is in the files, and the worker's secrets are
    # fetched, never carried.
    assert config["accessUrl"].endswith(f"/internal/deployments/{deployment.code}/access")
    assert "public" not in config and "invokeSecretSha256" not in config
    assert invoke_secret(deployment) not in json.dumps(files)
    # They are fetched by the deployment itself, with its own credential, at its cold start.
    assert "s3cr3t-value" not in json.dumps(files)
    assert config["secretsUrl"].endswith(f"/internal/deployments/{deployment.code}/secrets")


@pytest.mark.parametrize(
    "parts",
    [("a---b", "t"), ("greeter-", "-acme"), ("Big_Name", "ACME"), ("x" * 90, "y" * 30)],
)
def test_deployment_names_are_valid_and_never_hold_three_hyphens(parts):
    name = api.deployment_name(*parts)
    assert "---" not in name
    assert 1 <= len(name) <= 100
    assert name == name.lower() and not name.endswith("-")


# --- the client ------------------------------------------------------------------------------------


def test_large_files_are_uploaded_when_vercel_asks_for_them(fake_vercel, db):
    with api.VercelClient() as client:
        answer = client.create_deployment(
            "big", {"a.txt": "x" * 5000, "b.txt": "small"}, meta={"k": "v"}, inline_limit=100
        )
    assert answer["readyState"] == "QUEUED"
    assert len(fake_vercel.calls("POST", "/v13/deployments")) == 2  # refused once: missing_files
    assert len(fake_vercel.calls("POST", "/v2/files")) == 1  # only the big one
    assert fake_vercel.builds[answer["id"]].files["a.txt"] == b"x" * 5000
    # teamId travels on every call (the stand-in answers 404 without it, like a wrong team).
    assert all(query.get("teamId") == "team_fake" for _, _, query, _ in fake_vercel.requests)


def test_errors_are_sorted_into_transient_and_permanent(fake_vercel, db):
    fake_vercel.fail("GET", "/v13/deployments/", 429, retry_after="7")
    fake_vercel.fail("GET", "/v13/deployments/", 503)
    with api.VercelClient() as client:
        with pytest.raises(api.VercelTransient) as limited:
            client.get_deployment("dpl_x")
        assert limited.value.retry_after == 7
        with pytest.raises(api.VercelTransient) as unavailable:
            client.get_deployment("dpl_x")
        assert unavailable.value.status == 503
        with pytest.raises(api.VercelPermanent) as missing:
            client.get_deployment("dpl_x")
        assert missing.value.code == "not_found" and "could not be found" in missing.value.message


def test_rate_limit_without_retry_after_uses_reset_ms():
    reset = time.time() + 12
    response = httpx.Response(429, json={})
    body = {"error": {"limit": {"remaining": 0, "resetMs": int(reset * 1000), "total": 100}}}
    assert 10 < api.retry_after_seconds(response, body) <= 12
    dated = httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert api.retry_after_seconds(dated, {}) == 0


def test_an_undocumented_answer_is_a_clear_error(fake_vercel, db):
    fake_vercel.malformed.add(("GET", "/v13/deployments/"))
    with api.VercelClient() as client, pytest.raises(api.VercelBadAnswer) as bad:
        client.get_deployment("dpl_x")
    assert "does not match the documented shape" in bad.value.message
    assert "'id'" in bad.value.message


def test_the_stand_in_refuses_bodies_outside_the_spec(fake_vercel, db):
    """The stand-in really checks bodies: a field Vercel does not document is a 400."""
    response = httpx.post(
        f"{fake_vercel.url}/v13/deployments",
        params={"teamId": fake_vercel.team_id},
        headers={"authorization": f"Bearer {fake_vercel.token}"},
        json={"name": "x", "project": fake_vercel.project_id, "env": {"A": "b"}},
    )
    assert response.status_code == 400 and "'env' was unexpected" in response.text
    fake_vercel.errors.clear()


def test_a_vercel_deploy_without_configuration_names_the_missing_variables(tenant, settings):
    settings.VERCEL_API_TOKEN = ""
    settings.VERCEL_TEAM_ID = ""
    worker = vercel_worker(tenant)
    deployment = Deployment.objects.create(worker=worker, source=GREETER, backend="vercel")
    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == S.ERROR
    assert "VERCEL_API_TOKEN, VERCEL_TEAM_ID" in deployment.error_message


def test_a_module_that_does_not_type_check_fails_before_vercel_sees_it(fake_vercel, tenant):
    worker = vercel_worker(tenant)
    deployment = Deployment.objects.create(
        worker=worker,
        source="export async function f(): Promise<number> { return 'x'; }",
        backend="vercel",
    )
    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == S.ERROR and "TS2322" in deployment.error_message
    assert fake_vercel.requests == []


# --- submit and poll through real Celery workers ------------------------------------------------


def test_portal_deploy_runs_on_vercel_end_to_end(fake_vercel, start_worker, tenant, owner, client):
    worker = vercel_worker(tenant)
    client.force_login(owner)
    start_worker()
    response = client.post(f"/workers/{worker.code}/deploy/", {"source": GREETER})
    assert response.status_code == 302
    deployment = worker.deployments.get()
    assert deployment.backend == "vercel"
    # While it builds, the panel says where and how far (Vercel's own state).
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).backend_state, 30, "a submit")
    deployment = settled(deployment)
    assert deployment.status == S.READY, deployment.error_message
    build = fake_vercel.builds[deployment.backend_id]
    assert deployment.backend_url == f"https://{build.url}"
    assert build.meta["workersDeployment"] == str(deployment.code)
    assert "lib/worker.ts" in build.files and "next build" in deployment.build_log
    assert deployment.functions == ["hello"]
    worker.refresh_from_db()
    assert worker.production_id == deployment.pk
    panel = client.get(f"/deployments/{deployment.code}/panel/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 286  # terminal: htmx stops polling
    text = panel.content.decode()
    assert "Ready" in text and "on Vercel" in text
    # The addresses shown are aliases on the operator's domain, never Vercel's own.
    alias = f"{worker.name}--{deployment.short_id}--{tenant.slug}.fn.example.net"
    assert f"https://{alias}" in text and "vercel.app" not in text
    assert fake_vercel.alias_target(alias) == deployment.backend_id
    # The curl line names a secret of the worker's own (Settings); the platform's is never shown.
    assert "x-invoke-secret: &lt;an invocation secret of this worker&gt;" in text
    assert invoke_secret(deployment) not in text
    # Production moved to it by itself: its alias points there once the move is confirmed.
    production = f"{worker.name}--{tenant.slug}.fn.example.net"
    wait_for(
        lambda: fake_vercel.alias_target(production) == deployment.backend_id,
        15, "the production alias",
    )  # fmt: skip
    wait_for(lambda: Worker.objects.get(pk=worker.pk).alias_target_id == deployment.pk, 15, "it")
    shown = client.get(f"/workers/{worker.code}/").content.decode()
    assert f"https://{production}" in shown and "vercel.app" not in shown
    assert "Moving the production address" not in shown
    assert "vercel.app" not in client.get(f"/deployments/{deployment.code}/").content.decode()
    api = client.get(f"/api/workers/{worker.code}").content.decode()
    assert f"https://{production}" in api and "vercel.app" not in api
    # Polling followed the CLI's cadence: about one look per second while it built.
    assert len(fake_vercel.calls("GET", "/v13/deployments/")) <= 6


def test_rate_limited_submit_waits_and_makes_one_deployment(fake_vercel, start_worker, tenant):
    worker = vercel_worker(tenant)
    fake_vercel.fail("POST", "/v13/deployments", 429, retry_after="1")
    fake_vercel.fail("GET", "/v13/deployments/", 429, times=2, retry_after="1")
    fake_vercel.fail("GET", "/v13/deployments/", 500)
    start_worker()
    deployment = settled(deploy(worker, GREETER))
    assert deployment.status == S.READY, deployment.error_message
    assert len(fake_vercel.calls("POST", "/v13/deployments")) == 2
    assert len(fake_vercel.with_meta("workersDeployment", str(deployment.code))) == 1
    assert deployment.build_attempts == 1


def test_a_failed_vercel_build_shows_its_message(fake_vercel, start_worker, tenant, owner, client):
    worker = vercel_worker(tenant)
    fake_vercel.build_error = ("BUILD_FAILED", 'Command "next build" exited with 1')
    start_worker()
    deployment = settled(deploy(worker, GREETER))
    assert deployment.status == S.ERROR
    assert deployment.error_message == 'Command "next build" exited with 1 (BUILD_FAILED)'
    client.force_login(owner)
    page = client.get(f"/deployments/{deployment.code}/").content.decode()
    assert "The build failed" in page and "next build&quot; exited with 1 (BUILD_FAILED)" in page


def test_a_build_that_prints_megabytes_on_vercel_keeps_the_end_of_its_log(
    fake_vercel, start_worker, tenant
):
    """What the tenant's build prints on Vercel is the tenant's to choose, and its log is
    stored with the deployment: only its end is kept, and the log says so."""
    worker = vercel_worker(tenant)
    fake_vercel.build_output = [f"line {i} " + "x" * 200 for i in range(20_000)]  # 4 MB
    start_worker()
    deployment = settled(deploy(worker, GREETER))
    assert deployment.status == S.READY
    log = deployment.build_log
    assert len(log) < 400_000
    kept = log.split("[the first ", 1)[1].split("\n", 1)[0]
    assert kept.endswith("of its 20005 lines are not kept: only the last 256 KB are]"), kept
    assert "line 19999 " in log and "line 0 " not in log
    assert log.rstrip().endswith("ƒ /api/invoke/[fn]")  # the end, where a failure says why


def test_a_module_that_cannot_start_is_refused_before_anything_is_sent(
    fake_vercel, start_worker, tenant
):
    worker = vercel_worker(tenant)
    start_worker()
    broken = 'throw new Error("config missing");\nexport async function f() { return 1; }\n'
    deployment = settled(deploy(worker, broken))
    assert deployment.status == S.ERROR
    assert "The module failed to load: Error: config missing" in deployment.error_message
    assert fake_vercel.builds == {}  # the startup check ran here, as on the local back end


def test_an_undocumented_status_answer_ends_the_build_with_a_clear_error(
    fake_vercel, start_worker, tenant
):
    worker = vercel_worker(tenant)
    fake_vercel.malformed.add(("GET", "/v13/deployments/"))
    start_worker()
    deployment = settled(deploy(worker, GREETER))
    assert deployment.status == S.ERROR
    assert "does not match the documented shape" in deployment.error_message


def test_a_crash_between_create_and_save_is_recovered_without_a_duplicate(
    fake_vercel, start_worker, tenant, settings
):
    worker = vercel_worker(tenant)
    fake_vercel.hold_create_seconds = 5  # Vercel has created it; its answer is on the way
    first = start_worker(concurrency=1)
    deployment = deploy(worker, GREETER)
    assert fake_vercel.create_seen.wait(60)
    first.kill()  # SIGKILL: the worker never saves the id
    deployment.refresh_from_db()
    assert deployment.status == S.BUILDING and deployment.backend_id == ""
    fake_vercel.hold_create_seconds = 0

    settings.BUILD_DEADLINE_SECONDS = 0
    assert sweep_stuck_deployments() == {"requeued": 1, "failed": 0}
    start_worker(concurrency=1)
    deployment = settled(deployment)
    assert deployment.status == S.READY, deployment.error_message
    builds = fake_vercel.with_meta("workersDeployment", str(deployment.code))
    assert len(builds) == 1 and deployment.backend_id == builds[0].id
    assert len(fake_vercel.calls("POST", "/v13/deployments")) == 1
    assert "earlier attempt" in deployment.build_log


def test_cancel_in_the_portal_cancels_on_vercel(fake_vercel, start_worker, tenant, owner, client):
    worker = vercel_worker(tenant)
    fake_vercel.building_seconds = 120
    start_worker()
    deployment = deploy(worker, GREETER)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).backend_id, 30, "the submit")
    client.force_login(owner)
    panel = client.post(f"/deployments/{deployment.code}/cancel/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and "was canceled" in panel.content.decode()
    deployment.refresh_from_db()
    assert deployment.status == S.CANCELED
    build = fake_vercel.builds[deployment.backend_id]
    wait_for(lambda: fake_vercel.state(build) == "CANCELED", 30, "the cancel on Vercel")
    # Polling stops: the row stays canceled, the worker has no production deployment.
    time.sleep(1.5)
    deployment.refresh_from_db()
    worker.refresh_from_db()
    assert deployment.status == S.CANCELED and worker.production_id is None


def test_deleting_a_worker_deletes_its_vercel_deployments(
    fake_vercel, start_worker, tenant, owner, client
):
    worker = vercel_worker(tenant)
    start_worker()
    deployments = [settled(deploy(worker, GREETER)) for _ in range(2)]
    ids = [d.backend_id for d in deployments]
    client.force_login(owner)
    response = client.post(f"/workers/{worker.code}/delete/", {"confirm_name": worker.name})
    assert response.status_code == 302
    wait_for(lambda: all(fake_vercel.builds[i].deleted for i in ids), 30, "the deletes on Vercel")
    assert len(fake_vercel.calls("DELETE", "/v13/deployments/")) == 2


def test_cancelling_a_build_that_ended_says_so(tenant, owner, client):
    worker = vercel_worker(tenant)
    deployment = Deployment.objects.create(
        worker=worker, source=GREETER, backend="vercel", status=S.READY
    )
    client.force_login(owner)
    panel = client.post(f"/deployments/{deployment.code}/cancel/", HTTP_HX_REQUEST="true")
    assert "Nothing to cancel: the build had already ended (Ready)." in panel.content.decode()
    deployment.refresh_from_db()
    assert deployment.status == S.READY


def test_a_deployment_that_cannot_be_reached_is_named_in_the_error(tenant):

    from .conftest import free_port

    worker = vercel_worker(tenant)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    deployment = Deployment.objects.create(
        worker=worker, source=GREETER, backend="vercel", status=S.READY, backend_url=url
    )
    answer = deployment.runs_on.invoke(deployment, "hello", "{}")
    assert answer.status == 503
    assert answer.body["error"]["message"] == (
        f"The deployment could not be reached at {url} (ConnectError)."
    )


def test_outsiders_cannot_cancel(fake_vercel, tenant, outsider, client):
    worker = vercel_worker(tenant)
    deployment = Deployment.objects.create(worker=worker, source=GREETER, backend="vercel")
    client.force_login(outsider)
    assert client.post(f"/deployments/{deployment.code}/cancel/").status_code == 404
    deployment.refresh_from_db()
    assert deployment.status == S.QUEUED


def test_poll_of_an_ended_or_local_deployment_does_nothing(tenant):
    worker = Worker.objects.create(tenant=tenant, name="local")
    deployment = Deployment.objects.create(worker=worker, source=GREETER)
    assert poll_deployment(deployment.pk) is None


# --- log lines pushed by generated deployments ----------------------------------------------------


def test_a_generated_deployment_pushes_lines_with_its_own_token(tenant, client):
    worker = vercel_worker(tenant)
    deployment = Deployment.objects.create(worker=worker, source=GREETER, backend="vercel")
    other = Deployment.objects.create(worker=worker, source=GREETER, backend="vercel")
    line = {"requestId": "req_1", "seq": 0, "level": "log", "message": "hi", "timestamp": "2026-11-29T00:00:00Z"}  # fmt: skip
    batch = json.dumps({"logs": [{**line, "deploymentId": str(other.code)}]})
    url = f"/internal/deployments/{deployment.code}/ingest"
    for token in ["", ingest_token(other), "x" * 64]:
        denied = client.post(url, batch, "application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert denied.status_code == 404
    auth = f"Bearer {ingest_token(deployment)}"
    for _ in range(2):  # a re-sent batch adds nothing
        ok = client.post(url, batch, "application/json", HTTP_AUTHORIZATION=auth)
        assert ok.status_code == 200
    stored = LogEntry.objects.get()
    # The line lands on the deployment the token belongs to, whatever the body claims.
    assert stored.deployment_id == deployment.pk and stored.message == "hi"


def test_the_deploy_command_picks_vercel_for_one_deployment(
    fake_vercel, start_worker, tenant, tmp_path
):
    from .test_end_to_end import run_deploy_command

    start_worker()
    source = tmp_path / "greeter.ts"
    source.write_text(GREETER)
    done = run_deploy_command(tenant.slug, "greeter", str(source), "--backend", "vercel", "--wait")
    assert done.returncode == 0, done.stderr
    assert "status: ready" in done.stdout
    deployment = Deployment.objects.get(worker__name="greeter")
    assert deployment.backend == "vercel"
    # People are shown the operator's domain, an alias of Vercel's own address.
    alias = f"greeter--{deployment.short_id}--{tenant.slug}.fn.example.net"
    assert f"url: https://{alias}" in done.stdout and "vercel.app" not in done.stdout
    assert fake_vercel.alias_target(alias) == deployment.backend_id
    assert deployment.backend_url.endswith(".vercel.app")  # what the platform calls


def test_operators_choose_a_tenants_back_end_in_the_admin(admin_client, tenant):
    page = admin_client.get(f"/admin/tenancy/tenant/{tenant.pk}/change/").content.decode()
    assert 'name="backend"' in page and "Vercel" in page
    listing = admin_client.get("/admin/tenancy/tenant/").content.decode()
    assert "local (default)" in listing


# --- production addresses: aliases on the operator's domain -----------------------------------


def test_promote_rollback_and_releases_move_the_production_alias(
    fake_vercel, start_worker, tenant, owner, client
):
    from releases.models import Release, ReleaseItem

    worker = vercel_worker(tenant)
    start_worker()
    first = settled(deploy(worker, GREETER))
    assert first.status == S.READY, first.error_message
    alias = f"{worker.name}--{tenant.slug}.fn.example.net"
    wait_for(lambda: fake_vercel.alias_target(alias) == first.backend_id, 15, "the alias")
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    second = settled(deploy(worker, GREETER.replace("Hello", "Howdy")))
    assert second.status == S.READY, second.error_message
    assert fake_vercel.alias_target(alias) == first.backend_id  # a preview moves nothing

    # Vercel is busy at first: the move waits as told, and the page says where it stands.
    fake_vercel.fail("POST", f"/v2/deployments/{second.backend_id}/aliases", 429, retry_after="1")
    client.force_login(owner)
    assert client.post(f"/deployments/{second.code}/promote/").status_code == 302
    page = client.get(f"/workers/{worker.code}/").content.decode()
    assert f"Moving the production address to {second.short_id}" in page
    wait_for(lambda: fake_vercel.alias_target(alias) == second.backend_id, 15, "the move")
    wait_for(lambda: Worker.objects.get(pk=worker.pk).alias_target_id == second.pk, 15, "saved")
    assert (
        "Moving the production address"
        not in client.get(f"/workers/{worker.code}/").content.decode()
    )

    # A rollback moves it back; so does reverting a release.
    client.post(f"/deployments/{first.code}/promote/")
    wait_for(lambda: fake_vercel.alias_target(alias) == first.backend_id, 15, "the rollback")
    release = Release.objects.create(tenant=tenant, name="r")
    ReleaseItem.objects.create(release=release, worker=worker, deployment=second)
    client.post(f"/releases/{release.code}/promote/")
    wait_for(lambda: fake_vercel.alias_target(alias) == second.backend_id, 15, "the release")
    client.post(f"/releases/{release.code}/revert/")
    wait_for(lambda: fake_vercel.alias_target(alias) == first.backend_id, 15, "the revert")
    moves = [d for _, a, d in fake_vercel.alias_moves if a == alias]
    assert moves == [first.backend_id, second.backend_id, first.backend_id,
                     second.backend_id, first.backend_id]  # fmt: skip

    # The runtime cannot split traffic it does not serve: a canary is refused, and says why.
    refused = client.post(
        f"/deployments/{second.code}/canary/",
        {"percent": "10", "margin": "5", "min_calls": "20"},
    )
    assert refused.status_code == 409
    assert "Canaries need both deployments on this platform" in refused.content.decode()


# --- tenants' own domains ------------------------------------------------------------------------


def test_a_tenants_domain_on_vercel_is_claimed_verified_there_and_follows_production(
    fake_vercel, start_worker, tenant, owner, client, settings
):
    from releases.domains import check_domains
    from workers.models import Domain

    from .dns_server import DnsServer

    name = "shop.customer.test"
    worker = vercel_worker(tenant)
    start_worker()
    first = settled(deploy(worker, GREETER))
    assert first.status == S.READY, first.error_message
    client.force_login(owner)
    with DnsServer() as dns:
        settings.DOMAINS_DNS_SERVERS = [dns.address]
        fake_vercel.txt = lambda record: dns.zone.records.get((record, "TXT"), [])
        client.post("/domains/", {"hostname": name})
        domain = Domain.objects.get()
        dns.txt(domain.record_name, f"functions-verify={domain.token}")
        client.post(f"/domains/{domain.code}/check/")
        client.post(f"/domains/{domain.code}/route/", {"prefix": "/", "worker": worker.name})

        # Vercel asks for its own record: the tenant is shown it, beside the platform's.
        wait_for(lambda: Domain.objects.get().remote_verified is False, 30, "the claim on Vercel")
        challenge = fake_vercel.project_domains[name]["verification"][0]
        page = client.get("/domains/").content.decode()
        assert "runs on Vercel, which checks the name too" in page
        assert challenge["domain"] in page and challenge["value"] in page
        check_domains()  # the beat's tick: not there yet
        assert "missing required TXT Record" in Domain.objects.get().remote_error
        assert fake_vercel.alias_target(name) is None  # nothing served before Vercel agrees

        dns.txt(challenge["domain"], challenge["value"])
        check_domains()
        domain.refresh_from_db()
        assert domain.remote_verified is True and domain.remote_error == ""
        assert fake_vercel.alias_target(name) == first.backend_id

        # It follows production, like the platform's own alias.
        second = settled(deploy(worker, GREETER.replace("Hello", "Howdy")))
        assert second.status == S.READY, second.error_message
        wait_for(lambda: fake_vercel.alias_target(name) == second.backend_id, 15, "the move")

        # Removed: released on Vercel as well.
        client.post(f"/domains/{domain.code}/delete/")
        wait_for(lambda: name not in fake_vercel.project_domains, 15, "the release on Vercel")
        assert fake_vercel.alias_target(name) is None
