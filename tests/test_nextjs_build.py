"""The generated project is a real Next.js app: its dependencies come from npm, `next build`
compiles it, and `next start` serves the invocation contract of the local runtime, pushes its
console lines to the platform, and sees the deployment's secrets as process.env."""

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from deployments.build import analyse_program
from deployments.deploy import snapshot_bindings, snapshot_secrets
from deployments.generator import generate, invoke_secret
from deployments.models import Deployment
from deployments.program import program_from_files
from kv import store as kv_store
from kv.models import Binding, Namespace
from releases import production
from runs import lifecycle, steps
from runs.lifecycle import accept
from runs.models import Run
from telemetry.models import Invocation, LogEntry
from tenancy.models import Tenant
from workers import invocation_secrets
from workers.api_keys import issue_key
from workers.models import ApiKey, Worker, WorkerSecret
from workers.secrets import encrypt

from .conftest import Process, answers, free_port, wait_for
from .helpers import program

ROOT = Path(__file__).resolve().parent.parent
# npm's downloads, kept between clones (as bin/with-test-services keeps Deno's).
NPM_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "functions-platform" / "npm"
)
# A program as a tenant writes it: a package from npm, a second file, a fetch handler.
SOURCE = program("nextjs_build/index")
PAGE = program("nextjs_build/lib/page")


def run(args: list[str], cwd: Path, timeout: float) -> float:
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "npm_config_cache": str(NPM_CACHE)}
    started = time.monotonic()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return time.monotonic() - started


@pytest.mark.e2e
def test_next_build_and_the_invocation_contract(
    transactional_db, live_server, tenant, other_tenant, tmp_path, settings
):
    assert shutil.which("npm"), "npm is needed (bin/with-test-services installs it)"
    settings.PUBLIC_CONTROL_PLANE_URL = live_server.url
    settings.VERCEL_ALIAS_DOMAIN = "fn.example.test"
    worker = Worker.objects.create(tenant=tenant, name="adder", max_result_bytes=10_000)
    WorkerSecret.objects.create(
        worker=worker, name="API_SECRET", value_encrypted=encrypt("opens-sesame")
    )
    program = program_from_files({"index.ts": SOURCE, "lib/page.ts": PAGE})
    functions, http, lock, _ = analyse_program(program)  # the checks the back end runs
    assert functions == [
        "wait", "odd", "add", "boom", "big", "environment", "secret", "tally", "journey", "slow",
        "peer",
    ]  # fmt: skip
    assert http
    counts = Namespace.objects.create(tenant=tenant, name="counts")
    Binding.objects.create(worker=worker, namespace=counts, name="COUNTS")
    deployment = Deployment.objects.create(
        worker=worker, files=program.files, entry=program.entry, source=SOURCE, lockfile=lock,
        backend="vercel", secrets_sealed=snapshot_secrets(worker),
        kv_bindings=snapshot_bindings(worker),
    )  # fmt: skip
    project = tmp_path / "project"
    generated = generate(deployment, functions, http)
    package = json.loads(generated["package.json"])
    assert package["dependencies"]["ms"] == "2.1.3"
    # Every package below the program's is pinned with its hash in npm's lockfile, as the
    # platform's build resolved it.
    below = json.loads(lock)["npm"]["is-odd@3.0.1"]["dependencies"]
    npm_lock = json.loads(generated["package-lock.json"])["packages"]
    assert below == ["is-number"] and npm_lock["node_modules/is-number"]["version"] == "6.0.0"
    assert (
        npm_lock["node_modules/is-number"]["integrity"]
        == (json.loads(lock)["npm"]["is-number@6.0.0"]["integrity"])
    )
    assert 'import ms from "ms";' in generated["lib/worker/index.ts"]
    # The worker's timeout (2 s here) and memory become the function's, packages install
    # without their scripts.
    assert "export const maxDuration = 7;" in generated["app/api/invoke/[fn]/route.ts"]
    vercel = json.loads(generated["vercel.json"])
    install_command = vercel["installCommand"].split()
    assert install_command[:2] == ["npm", "ci"] and "--ignore-scripts" in install_command
    assert vercel["functions"]["app/api/invoke/[fn]/route.ts"]["memory"] == 384
    for path, content in generated.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(content)

    # Installed as Vercel installs it (vercel.json), from the download cache when it can.
    install = run([*install_command, "--prefer-offline"], project, 600)
    build = run(["npx", "next", "build"], project, 600)
    print(f"npm ci: {install:.1f} s, next build: {build:.1f} s")
    # A second build of the same program (a redeploy carries the lockfile on) installs the
    # same tree: the same lockfile, and npm installs exactly it.
    again = Deployment.objects.create(
        worker=worker, files=program.files, entry=program.entry, source=SOURCE,
        lockfile=deployment.lockfile, backend="vercel", secrets_sealed=deployment.secrets_sealed,
        kv_bindings=deployment.kv_bindings,
    )  # fmt: skip
    second = generate(again, functions, http)
    assert second["package-lock.json"] == generated["package-lock.json"]
    twin = tmp_path / "twin"
    twin.mkdir()
    for name in ("package.json", "package-lock.json"):
        (twin / name).write_text(second[name])
    run([*install_command, "--prefer-offline"], twin, 600)
    installed = [
        json.loads((root / "node_modules/.package-lock.json").read_text())["packages"]
        for root in (project, twin)
    ]
    assert installed[0] == installed[1] and installed[0]["node_modules/is-number"]["integrity"]
    port = free_port()
    server = Process(
        "next",
        ["npx", "next", "start", "-p", str(port), "-H", "127.0.0.1"],
        # What Vercel gives a deployment: no platform secret in the environment.
        {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
         "NEXT_TELEMETRY_DISABLED": "1"},
        cwd=project,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: answers(f"{url}/api/invoke/add") or "Ready" in server.output(), 60, "next start"
        )
        Deployment.objects.filter(pk=deployment.pk).update(
            status="ready", backend_url=url, invoke_secret_required=True, functions=functions
        )
        deployment.refresh_from_db()

        ok = deployment.runs_on.invoke(deployment, "add", '{"a": 2, "b": 3}')
        assert ok.status == 200, ok.body
        assert ok.body["result"] == {"sum": 5}
        assert [(line["seq"], line["level"], line["message"]) for line in ok.body["logs"]] == [
            (0, "log", "adding 2 3"),
            (1, "warn", "{ checked: true }"),
        ]
        assert ok.body["requestId"].startswith("req_") and ok.body["durationMs"] >= 50

        failed = deployment.runs_on.invoke(deployment, "boom", "{}")
        assert failed.status == 500
        assert failed.body["error"]["code"] == "function_error"
        assert failed.body["error"]["message"] == "bad input"
        stack = failed.body["error"]["stack"]
        # Source-mapped, and named as uploaded: the throw in the second file (the platform's
        # own frames named as its, not as paths a tenant might take for theirs).
        # (the function's name and the column are the minifier's: they move as the bundle does)
        assert re.search(r"TypeError: bad input\n    at \w+ \(lib/page\.ts:4:\d+\)", stack), stack
        assert "lib/worker/" not in stack and "../" not in stack and "runtime:lib/" in stack
        assert failed.body["logs"][0]["message"] == "about to fail"

        assert deployment.runs_on.invoke(deployment, "secret", "{}").body["result"] == {
            "value": "opens-sesame"
        }
        assert (
            json.loads((project / "node_modules/is-number/package.json").read_text())["version"]
            == "6.0.0"
        )
        assert deployment.runs_on.invoke(deployment, "odd", '{"n": 3}').body["result"] == {
            "odd": True
        }
        waited = deployment.runs_on.invoke(deployment, "wait", '{"text": "2 days"}')
        assert waited.body["result"] == {"ms": 172_800_000}  # the npm package, installed
        # Raw HTTP: every other path reaches the fetch handler, behind the same secret.
        secret = {"x-invoke-secret": invoke_secret(deployment)}
        html = httpx.get(f"{url}/docs/a", headers=secret, timeout=30)
        assert html.status_code == 200 and html.text == "<h1>/docs/a</h1>"
        assert html.headers["x-request-id"].startswith("req_")
        posted = httpx.post(f"{url}/hook", content=b"12345", headers=secret, timeout=30)
        assert posted.text == "got 5 bytes"
        assert httpx.get(f"{url}/docs/a", timeout=30).status_code == 401
        wait_for(
            lambda: Invocation.objects.filter(request_id=html.headers["x-request-id"]).exists(),
            30,
            "the fetch handler's invocation",
        )
        # The result size limit holds as on the local runtime.
        big = deployment.runs_on.invoke(deployment, "big", "{}")
        assert big.status == 500 and big.body["error"]["code"] == "result_too_large"
        # Its own secrets, fetched at cold start with its own credential, and nothing else.
        seen = deployment.runs_on.invoke(deployment, "environment", "{}")
        assert seen.body["result"] == ["API_SECRET"]
        # The platform's API keys with the invoke scope open a private deployment too.
        key = issue_key(tenant, "caller", ["invoke"])[1]
        with_key = httpx.post(
            f"{url}/api/invoke/add", json={"a": 1, "b": 2},
            headers={"authorization": f"Bearer {key}"}, timeout=30,
        )  # fmt: skip
        assert with_key.status_code == 200 and with_key.json()["result"] == {"sum": 3}
        reader = issue_key(tenant, "reader", ["read"])[1]
        theirs = issue_key(other_tenant, "theirs", ["invoke"])[1]
        for refused_key in (reader, theirs, key[:-2] + "00"):
            refused = httpx.post(
                f"{url}/api/invoke/add", json={"a": 1, "b": 2},
                headers={"authorization": f"Bearer {refused_key}"}, timeout=30,
            )  # fmt: skip
            assert refused.status_code == 401, refused_key
        unknown = deployment.runs_on.invoke(deployment, "nope", "{}")
        assert unknown.status == 404 and unknown.body["error"]["code"] == "function_not_found"
        bad = deployment.runs_on.invoke(deployment, "add", "{nope")
        assert bad.status == 400 and bad.body["error"]["code"] == "invalid_json"
        huge = deployment.runs_on.invoke(
            deployment, "add", '"' + "x" * django_settings.RUNTIME_MAX_BODY_BYTES + '"'
        )
        assert huge.status == 413 and huge.body["error"]["code"] == "payload_too_large"
        # A line printed reaches the platform while its call still runs (the live tail).
        answered: list = []
        running = threading.Thread(
            target=lambda: answered.append(deployment.runs_on.invoke(deployment, "slow", "{}"))
        )
        running.start()
        wait_for(
            lambda: LogEntry.objects.filter(
                deployment=deployment, message="before the wait"
            ).exists(), 10, "the line of the call that still runs",
        )  # fmt: skip
        assert running.is_alive() and not answered  # (it runs until its 2 s timeout)
        running.join()
        late = answered[0]
        assert late.status == 504 and late.body["error"]["code"] == "timeout"
        assert late.body["logs"][0]["message"] == "before the wait"

        # An async call is handed to the platform, stored as a run before the caller hears
        # 202, and run by it against this deployment, as on the local runtime.
        handed = httpx.post(
            f"{url}/api/invoke/add", json={"a": 20, "b": 22}, timeout=30,
            headers={**secret, "prefer": "respond-async"},
        )  # fmt: skip
        assert handed.status_code == 202, handed.text
        queued_run = Run.objects.get(code=handed.json()["runId"])
        assert handed.headers["location"] == handed.json()["statusUrl"]
        assert lifecycle.execute(queued_run.pk) == "succeeded"
        queued_run.refresh_from_db()
        assert json.loads(queued_run.result) == {"sum": 42}

        # ctx.kv and ctx.enqueue through the platform, with the deployment's own credential.
        tallied = deployment.runs_on.invoke(deployment, "tally", '{"times": 3}')
        assert tallied.status == 200, tallied.body
        assert tallied.body["result"] == {
            "value": 3, "note": ["kept", {"by": "tally"}], "keys": ["n", "note"],
            "runId": tallied.body["result"]["runId"], "refused": "RangeError",
        }  # fmt: skip
        assert bytes(kv_store.get(counts, "n").value) == b"3"
        queued = Run.objects.get(code=tallied.body["result"]["runId"])
        assert (
            queued.trigger == "enqueue"
            and queued.function == "add"
            and queued.deployment == deployment
        )

        # Durable steps, kept in the platform's journal: the run parks on its sleep and its
        # wait, and the charge runs once although the function runs three times.
        journey, _ = accept(deployment, "journey", '{"order": "o1"}')
        assert lifecycle.execute(journey.pk) == "sleeping"
        charge = journey.steps.get(name="charge")
        assert charge.status == "done" and charge.tries == 1
        wait_for(lambda: lifecycle.execute(journey.pk) == "waiting", 10, "the sleep to end")
        steps.send_event(journey, "approved", '{"order": "o1", "by": "ann"}', "test")
        assert lifecycle.execute(journey.pk) == "succeeded"
        journey.refresh_from_db()
        assert json.loads(journey.result) == {"charged": {"charge": "ch_o1"}, "approvedBy": "ann"}
        assert bytes(kv_store.get(counts, "charges:o1").value) == b"1"
        assert list(journey.attempt_set.values_list("outcome", flat=True)) == [
            "parked", "parked", "ok",
        ]  # fmt: skip
        shown = steps.with_lines(list(journey.steps.all()), journey.attempt_set.all())
        assert [(s.name, s.status) for s in shown] == [
            ("charge", "done"), ("cool-off", "done"), ("approved", "done"),
        ]  # fmt: skip
        assert [line["message"] for line in shown[0].printed] == ["charging o1"]
        # A caller naming a run without the platform's signature gets no steps (and cannot
        # write to that run's journal).
        forged = httpx.post(
            f"{url}/api/invoke/journey", json={"order": "o2"},
            headers={**secret, "x-run-id": str(journey.code)}, timeout=30,
        )  # fmt: skip
        assert forged.status_code == 500, forged.text
        assert "durable run" in forged.json()["error"]["message"]

        # Who may call it is asked at call time (an answer at most 2 s old), not built in:
        # the worker's own invocation secrets, made and revoked by its admins...
        def call(**headers) -> int:
            return httpx.post(f"{url}/api/invoke/add", json={"a": 1, "b": 1}, headers=headers,
                              timeout=30).status_code  # fmt: skip

        made, value = invocation_secrets.issue(worker, "test")
        wait_for(lambda: call(**{"x-invoke-secret": value}) == 200, 5, "the new secret to open")
        assert call(**{"x-invoke-secret": "wis_" + "x" * 43}) == 401
        assert call() == 401
        invocation_secrets.revoke(made)
        wait_for(lambda: call(**{"x-invoke-secret": value}) == 401, 5, "the revoked secret refused")
        # ...an API key, revoked: refused within seconds too...
        ApiKey.objects.filter(name="caller").update(revoked_at=timezone.now())
        wait_for(lambda: call(authorization=f"Bearer {key}") == 401, 5, "the revoked key refused")
        # ...its visibility, changed after the build...
        Worker.objects.filter(pk=worker.pk).update(public=True)
        wait_for(lambda: call() == 200, 5, "the worker made public to answer anyone")
        Worker.objects.filter(pk=worker.pk).update(public=False)
        wait_for(lambda: call() == 401, 5, "the worker made private to refuse strangers")
        # ...and a suspended tenant's deployment answers nobody, the platform included.
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
        wait_for(
            lambda: deployment.runs_on.invoke(deployment, "add", "{}").status == 403, 5,
            "the suspended tenant's deployment to refuse",
        )  # fmt: skip
        stopped = deployment.runs_on.invoke(deployment, "add", "{}")
        assert stopped.body["error"]["code"] == "tenant_suspended"
        assert "suspended" in stopped.body["error"]["message"]
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ACTIVE)
        wait_for(lambda: deployment.runs_on.invoke(deployment, "add", "{}").status == 200, 5,
                 "the resumed tenant's deployment to answer")  # fmt: skip
        # Only the platform's own calls name their trigger; a caller naming one is recorded
        # as plain http.
        named = deployment.runs_on.invoke(deployment, "add", "{}", trigger="cron")
        made, value = invocation_secrets.issue(worker, "test")
        wait_for(lambda: call(**{"x-invoke-secret": value}) == 200, 5, "the new secret to open")
        posing = httpx.post(
            f"{url}/api/invoke/add", json={}, timeout=30,
            headers={"x-invoke-secret": value, "x-invocation-trigger": "cron"},
        )  # fmt: skip
        for request_id in (named.body["requestId"], posing.headers["x-request-id"]):
            wait_for(lambda rid=request_id: Invocation.objects.filter(request_id=rid).exists(),
                     30, "the pushed invocation")  # fmt: skip
        assert Invocation.objects.get(request_id=named.body["requestId"]).trigger == "cron"
        assert Invocation.objects.get(request_id=posing.headers["x-request-id"]).trigger == "http"

        # The lines and invocations reached the platform by themselves (pushed, not polled).
        wait_for(
            lambda: LogEntry.objects.filter(request_id=ok.body["requestId"]).count() == 2,
            30,
            "the pushed lines",
        )
        pushed = LogEntry.objects.filter(request_id=ok.body["requestId"]).order_by("seq")
        assert [line.message for line in pushed] == ["adding 2 3", "{ checked: true }"]
        assert all(line.deployment_id == deployment.pk for line in pushed)
        wait_for(
            lambda: Invocation.objects.filter(request_id=failed.body["requestId"]).exists(),
            30,
            "the pushed invocation",
        )
        assert Invocation.objects.get(request_id=failed.body["requestId"]).status == "error"
        # Calls between the tenant's workers see one release whole. A call through the
        # worker's production alias sends its fetch of a production alias to the deployment
        # that alias served in the call's release generation, at its own URL...
        Worker.objects.filter(pk=worker.pk).update(production=deployment)
        alias = f"{worker.host}.fn.example.test"
        chained = {"url": f"https://{alias}/api/invoke/add", "secret": value}

        def through_alias(**headers):
            return httpx.post(f"{url}/api/invoke/peer", json=chained, timeout=30,
                              headers={"host": alias, **secret, **headers})  # fmt: skip

        served = {"status": 200, "result": {"sum": 3}, "again": 200}  # the fetch, twice
        assert through_alias().json()["result"] == served
        # ...and keeps doing so after a newer deployment is promoted, while the alias still
        # points at this one (Vercel moves aliases one by one); a call further along the
        # chain, sent with the newer generation, reaches the newer deployment.
        newer = Deployment.objects.create(
            worker=worker, source=SOURCE, backend="vercel", status="ready", functions=functions,
            backend_url="http://127.0.0.1:9",  # nothing answers there
        )  # fmt: skip
        assert production.set_production(worker, newer, "test") == "promote"
        generation = Tenant.objects.get(pk=tenant.pk).generation
        assert through_alias().json()["result"] == served
        onward = through_alias(**{"x-release-generation": str(generation)}).json()
        assert onward["error"]["code"] == "function_error", onward
        Worker.objects.filter(pk=worker.pk).update(production=deployment)

        # The deployment's calls at once and the tenant's invocations per minute are counted
        # with the platform's own runtime (one limit, one quota on both back ends).
        Worker.objects.filter(pk=worker.pk).update(max_concurrency=1)
        answers_at_once: list = []
        both = [threading.Thread(target=lambda: answers_at_once.append(
            deployment.runs_on.invoke(deployment, "slow", "{}"))) for _ in range(2)]  # fmt: skip
        for thread in both:
            thread.start()
        for thread in both:
            thread.join()
        codes = sorted(a.body["error"]["code"] for a in answers_at_once)
        assert codes == ["timeout", "too_many_concurrent_invocations"], codes
        Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=1)
        refused = [deployment.runs_on.invoke(deployment, "add", "{}") for _ in range(2)]
        over = [a for a in refused if a.status == 429]
        assert over and over[0].body["error"]["code"] == "rate_limited", refused
        Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=None)
        # The instance's first call is its cold start, and only that one.
        first = Invocation.objects.get(request_id=ok.body["requestId"])
        assert first.cold and first.trigger == "portal"
        assert not Invocation.objects.get(request_id=failed.body["requestId"]).cold
    finally:
        server.stop()
