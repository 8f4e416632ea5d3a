"""The whole path with real parts: portal over HTTP -> Celery -> Deno build -> runtime."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from deployments.deno import deno_bin
from deployments.models import Deployment
from deployments.tasks import sweep_stuck_deployments
from telemetry.models import Invocation, LogEntry
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import ROOT, e2e_database_url, form_post, portal_session, wait_for
from .helpers import GREETER, TYPE_ERROR

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_portal_deploy_build_and_invoke_over_http(
    live_server, runtime, start_worker, owner, tenant
):
    start_worker()
    client = portal_session(live_server.url, owner.username)

    response = form_post(client, "/workers/new/", {"name": "greeter", "source": GREETER})
    assert response.status_code == 302
    worker_page = response.headers["location"]
    worker = Worker.objects.get(tenant=tenant, name="greeter")
    deployment = worker.deployments.get()

    # The status partial polls until the build ends, then answers 286 to stop polling.
    panel = f"/deployments/{deployment.code}/panel/"
    hx = {"HX-Request": "true"}
    final = wait_for(
        lambda: (r := client.get(panel, headers=hx)).status_code == 286 and r,
        60,
        "the build to end",
        0.25,
    )
    assert "badge-ready" in final.text
    assert f"{deployment.host}.localhost" in final.text  # the URL and a curl line to copy
    assert "curl -X POST" in final.text

    page = client.get(worker_page).text
    assert "Production URL" in page and f"http://{worker.host}.localhost" in page

    # Invoke through the runtime URL, as any HTTP client would: the worker is private, so
    # with an API key that may invoke.
    deployment.refresh_from_db()
    url = f"{deployment.path_url}/api/invoke/hello"
    assert httpx.post(url, json={}, timeout=30).status_code == 401
    _, key = issue_key(tenant, "caller", ["invoke"])
    answer = httpx.post(
        url, json={"name": "Ada"}, headers={"authorization": f"Bearer {key}"}, timeout=30
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["result"] == {"greeting": "Hello, Ada!"}
    assert [line["message"] for line in body["logs"]] == ["hello called", "name is Ada"]

    # And through the portal's invoke panel, which renders result, duration and console.
    result = form_post(
        client, f"/deployments/{deployment.code}/invoke/",
        {"function": "hello", "payload": '{"name": "Grace"}'}, headers=hx,
    )  # fmt: skip
    assert result.status_code == 200
    assert "Hello, Grace!" in result.text
    assert "hello called" in result.text and "name is Grace" in result.text
    assert re.search(r"\d+(\.\d)? ms", result.text)
    bad = form_post(
        client, f"/deployments/{deployment.code}/invoke/",
        {"function": "hello", "payload": "{oops"}, headers=hx,
    )  # fmt: skip
    assert "Not valid JSON" in bad.text

    def recorded():
        triggers = set(
            Invocation.objects.filter(deployment=deployment).values_list("trigger", flat=True)
        )
        return triggers == {"http", "portal"}

    wait_for(recorded, 10, "both invocations to be recorded")
    assert LogEntry.objects.filter(deployment=deployment).count() == 4


def test_failed_build_shows_the_error_in_the_portal(live_server, start_worker, owner, tenant):
    start_worker()
    client = portal_session(live_server.url, owner.username)
    form_post(client, "/workers/new/", {"name": "broken", "source": TYPE_ERROR})
    deployment = Deployment.objects.get(worker__name="broken")
    panel = f"/deployments/{deployment.code}/panel/"
    final = wait_for(
        lambda: (r := client.get(panel, headers={"HX-Request": "true"})).status_code == 286 and r,
        60, "the build to end", 0.25,
    )  # fmt: skip
    assert "The build failed" in final.text
    assert "line 2, column 9: TS2322" in final.text


def slow_source() -> str:
    # Thousands of typed functions take deno check several seconds: time to kill the worker.
    marker = uuid.uuid4().hex  # a fresh source, so no type-check cache makes it quick
    lines = [f"// {marker}"]
    for i in range(6000):
        lines.append(
            f"export async function f{i}(p: {{ a{i}: number; b: string[] }}): Promise<{{ r: number }}> "
            f"{{ const x: Record<string, number> = {{ k{i}: p.a{i} }}; return {{ r: x.k{i} + p.b.length }}; }}"
        )
    return "\n".join(lines)


def processes() -> dict[int, tuple[int, int, str, str]]:
    """pid -> (parent, process group, state, command line), from /proc."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0], cmdline)
    return found


def type_checks_of(worker) -> list[int]:
    """The type-checking steps the Celery worker's pool processes started: `deno check`, or
    the type checker they keep warm between builds (`deno lsp`, deployments/checker.py)."""
    now = processes()
    pool = {pid for pid, (_, group, _, _) in now.items() if group == worker.proc.pid}
    return [pid for pid, (parent, _, state, cmd) in now.items()
            if parent in pool and cmd.startswith((deno_bin() + " check", deno_bin() + " lsp"))
            and state != "Z"]  # fmt: skip


def test_build_survives_its_worker_being_killed(start_worker, tenant, settings):
    from deployments.deploy import deploy

    settings.MAX_SOURCE_BYTES = 2 * 1024 * 1024  # a module big enough to build for seconds
    first = start_worker(concurrency=1)
    worker = Worker.objects.create(tenant=tenant, name="slow")
    deployment = deploy(worker, slow_source())
    steps = wait_for(lambda: type_checks_of(first), 60, "the type check to start", 0.02)
    first.kill()  # SIGKILL to the worker and its pool, mid-step
    deployment.refresh_from_db()
    assert deployment.status == "building"  # it really died mid-way
    # The step (in a session of its own, out of reach of the worker's group) dies with it:
    # nothing orphaned keeps the build's CPU and memory.
    wait_for(
        lambda: not any(pid in processes() and processes()[pid][2] != "Z" for pid in steps),
        1, "the orphaned type check to end", 0.05,
    )  # fmt: skip

    # The beat sweep finds it once its deadline has passed, and a live worker finishes it.
    settings.BUILD_DEADLINE_SECONDS = 0
    assert sweep_stuck_deployments() == {"requeued": 1, "failed": 0}
    second = start_worker(concurrency=1)
    try:
        wait_for(
            lambda: Deployment.objects.get(pk=deployment.pk).is_terminal, 120, "the rebuild", 0.2
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the worker printed:\n{second.output()[-4000:]}") from None
    deployment.refresh_from_db()
    assert deployment.status == "ready"
    assert deployment.build_attempts == 2
    assert len(deployment.functions) == 6000


def test_a_build_process_starts_its_type_checker_before_its_first_build(start_worker, tenant):
    """The first deploy after a worker starts does not wait the second the checker's compiler
    takes to load: each build process starts its checker as it starts, and builds use it."""
    from deployments.deploy import deploy

    celery = start_worker(concurrency=1, checker_at_start=True)
    checkers = wait_for(lambda: type_checks_of(celery), 30, "the type checker to start", 0.1)
    worker = Worker.objects.create(tenant=tenant, name="first")
    deployment = deploy(worker, GREETER)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).is_terminal, 60, "the build", 0.1)
    assert Deployment.objects.get(pk=deployment.pk).status == "ready"
    assert type_checks_of(celery) == checkers  # the same server, still there: no other started


def run_deploy_command(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": e2e_database_url()}
    return subprocess.run(
        [sys.executable, "manage.py", "deploy", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_command_line_deploy_waits_and_reports(start_worker, tenant, tmp_path):
    start_worker()
    good = tmp_path / "good.ts"
    good.write_text(GREETER)
    result = run_deploy_command("acme", "cli-fn", str(good), "--wait")
    assert result.returncode == 0, result.stderr
    assert "status: ready" in result.stdout
    deployment = Deployment.objects.get(worker__name="cli-fn")
    assert f"url: {deployment.url}" in result.stdout

    bad = tmp_path / "bad.ts"
    bad.write_text(TYPE_ERROR)
    result = run_deploy_command("acme", "cli-fn", str(bad), "--wait")
    assert result.returncode == 1
    assert "status: error" in result.stdout
    assert "line 2, column 9: TS2322" in result.stderr

    result = run_deploy_command("nobody", "cli-fn", str(good))
    assert result.returncode == 1 and "No tenant with the slug 'nobody'" in result.stderr


def test_command_line_deploys_a_directory(start_worker, tenant, tmp_path):
    start_worker()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.ts").write_text(
        'import ms from "ms";\nimport { twice } from "./twice.ts";\n'
        "export async function wait(p: { text: string }) { return twice(ms(p.text)); }\n"
        'export default { fetch: () => new Response("up") };\n'
    )
    (tmp_path / "src" / "twice.ts").write_text("export const twice = (n: number) => n * 2;\n")
    (tmp_path / "package.json").write_text(
        '{"main": "src/main.ts", "dependencies": {"ms": "2.1.3"}}'
    )
    (tmp_path / "node_modules" / "ms").mkdir(parents=True)  # left behind by npm: not deployed
    (tmp_path / "node_modules" / "ms" / "index.js").write_text("module.exports = 1;")
    (tmp_path / ".env").write_text("SECRET=1")
    result = run_deploy_command("acme", "dir-fn", str(tmp_path), "--wait")
    assert result.returncode == 0, result.stderr
    assert "functions: wait" in result.stdout and "packages: ms@2.1.3" in result.stdout
    assert "fetch handler: every path but /api/invoke/*" in result.stdout
    deployment = Deployment.objects.get(worker__name="dir-fn")
    assert sorted(deployment.files) == ["package.json", "src/main.ts", "src/twice.ts"]
    assert deployment.entry == "src/main.ts"

    (tmp_path / "link.ts").symlink_to("/etc/hostname")
    result = run_deploy_command("acme", "dir-fn", str(tmp_path))
    assert result.returncode == 1 and "link.ts is a link" in result.stderr
