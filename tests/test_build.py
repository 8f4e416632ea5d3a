"""Builds on the local back end: real Deno, task bodies called directly."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.build import Workspace, bundle
from deployments.deno import bundler_in_place
from deployments.models import Artifact, Deployment
from deployments.program import program_from_source
from deployments.tasks import build_deployment, sweep_stuck_deployments

from .helpers import (
    EDGE_CASES,
    GREETER,
    NO_EXPORTS,
    SYNTAX_ERROR,
    TYPE_ERROR,
    build_now,
    create_deployment,
)

pytestmark = pytest.mark.slow  # real Deno builds


Status = Deployment.Status


def test_ready_build_finds_exports_stores_artifact_and_goes_live(worker):
    deployment = build_now(worker, GREETER)
    assert deployment.status == Status.READY
    assert deployment.functions == ["hello"]
    assert (
        deployment.backend_url
        == f"http://greeter--{deployment.short_id}--acme.localhost:{deployment.url.rsplit(':', 1)[1]}"
    )
    assert deployment.started_at and deployment.finished_at
    # The artifact is stored once under its content hash and is plain JavaScript.
    artifact = deployment.artifact
    assert len(artifact.sha256) == 64
    assert "function hello" in artifact.content and "payload: {" not in artifact.content
    # The build log speaks of steps, not of the tools behind them (the platform is white-label).
    assert "Type-checking" in deployment.build_log and "deno" not in deployment.build_log.lower()
    worker.refresh_from_db()
    assert worker.production == deployment


def test_same_source_shares_one_immutable_artifact(worker):
    first = build_now(worker, GREETER)
    second = build_now(worker, GREETER)
    assert first.pk != second.pk and first.short_id != second.short_id
    assert first.artifact_id == second.artifact_id
    assert Artifact.objects.count() == 1
    worker.refresh_from_db()
    assert worker.production == second  # the newest ready deployment serves production


def test_type_error_reports_line_column_and_the_rules(worker):
    deployment = build_now(worker, TYPE_ERROR)
    assert deployment.status == Status.ERROR
    assert "line 2, column 9: TS2322 Type 'string' is not assignable to type 'number'" in (
        deployment.error_message
    )
    assert "TypeScript strict mode" in deployment.error_message
    assert "/tmp" not in deployment.error_message  # our temporary paths never leak
    assert deployment.artifact is None and deployment.functions == []
    worker.refresh_from_db()
    assert worker.production is None


def test_syntax_error_reports_where(worker):
    deployment = build_now(worker, SYNTAX_ERROR)
    assert deployment.status == Status.ERROR
    assert deployment.error_message.startswith("Syntax error in index.ts at line 1, column 46")
    assert "index.ts:1:46" in deployment.error_message and "/tmp" not in deployment.error_message
    assert [(d["file"], d["line"], d["column"]) for d in deployment.diagnostics] == [
        ("index.ts", 1, 46)
    ]


def test_no_exported_function_is_an_error_that_shows_an_example(worker):
    deployment = build_now(worker, NO_EXPORTS)
    assert deployment.status == Status.ERROR
    assert deployment.error_message.startswith("No exported functions and no fetch handler")
    assert "export async function" in deployment.error_message


def test_untyped_parameters_are_allowed(worker):
    deployment = build_now(worker, EDGE_CASES)
    assert deployment.status == Status.READY
    assert deployment.functions == ["echo", "fail", "spin", "nap", "untyped"]


def test_build_task_is_safe_to_run_twice(worker):
    deployment = build_now(worker, GREETER)
    finished = deployment.finished_at
    assert build_deployment(deployment.pk) is None  # already terminal: nothing happens
    deployment.refresh_from_db()
    assert deployment.status == Status.READY and deployment.finished_at == finished
    assert deployment.build_attempts == 1


def test_build_of_a_deleted_deployment_returns_quietly(worker):
    deployment = create_deployment(worker, GREETER)
    deployment.delete()
    assert build_deployment(deployment.pk) is None


def test_redelivered_build_of_a_building_deployment_finishes_it(worker):
    # What a worker killed mid-build leaves behind: BUILDING, and the message redelivered.
    deployment = create_deployment(worker, GREETER)
    assert deployment.transition(Status.QUEUED, Status.BUILDING, started_at=timezone.now())
    assert build_deployment(deployment.pk) == Status.READY
    deployment.refresh_from_db()
    assert deployment.status == Status.READY


def test_transition_is_compare_and_swap(worker):
    deployment = create_deployment(worker, GREETER)
    stale = Deployment.objects.get(pk=deployment.pk)
    assert deployment.transition(Status.QUEUED, Status.CANCELED)
    assert not stale.transition(Status.QUEUED, Status.BUILDING)  # lost the race: no change
    stale.refresh_from_db()
    assert stale.status == Status.CANCELED


def test_sweep_requeues_a_stuck_build_and_fails_one_that_keeps_dying(worker, settings):
    settings.BUILD_DEADLINE_SECONDS = 60
    settings.BUILD_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - timedelta(minutes=5)
    stuck = create_deployment(worker, GREETER)
    Deployment.objects.filter(pk=stuck.pk).update(
        status=Status.BUILDING, updated=long_ago, build_attempts=1
    )
    hopeless = create_deployment(worker, GREETER)
    Deployment.objects.filter(pk=hopeless.pk).update(
        status=Status.BUILDING, updated=long_ago, build_attempts=3
    )
    recent = create_deployment(worker, GREETER)
    Deployment.objects.filter(pk=recent.pk).update(status=Status.BUILDING, build_attempts=1)

    assert sweep_stuck_deployments() == {"requeued": 1, "failed": 1}
    stuck.refresh_from_db()
    hopeless.refresh_from_db()
    recent.refresh_from_db()
    assert stuck.status == Status.QUEUED
    assert hopeless.status == Status.ERROR
    assert "did not finish after 3 attempts" in hopeless.error_message
    assert recent.status == Status.BUILDING  # still within its deadline


@pytest.mark.parametrize(
    "header",
    [
        'import data from "/tmp/build-secret.json" with { type: "json" };',
        'import data from "file:///tmp/build-secret.json" with { type: "json" };',
        'import data from "../../../../../../tmp/build-secret.json" with { type: "json" };',
        'export { y } from "/tmp/build-secret.json" with { type: "json" };',
        '/// <reference path="/tmp/build-secret.json" />',
    ],
)
def test_files_outside_the_upload_are_refused_and_never_read(worker, header):
    from pathlib import Path

    Path("/tmp/build-secret.json").write_text('{"token": "build-machine-secret-42"}')
    source = f"{header}\nexport async function f(p: unknown) {{ return 1; }}\n"
    deployment = build_now(worker, source)
    assert deployment.status == Status.ERROR
    assert "a file outside the uploaded files" in deployment.error_message
    assert deployment.error_message.startswith("index.ts imports ")
    assert "build-machine-secret-42" not in deployment.error_message + deployment.build_log
    assert deployment.artifact is None


def test_an_import_of_a_file_not_uploaded_names_it(worker):
    deployment = build_now(
        worker, 'import { x } from "./other.ts";\nexport async function f() { return x; }\n'
    )
    assert deployment.status == Status.ERROR
    assert deployment.error_message == (
        "index.ts imports './other.ts': no such file among the uploaded files."
    )


def test_first_bundles_at_once_on_an_empty_package_cache_all_succeed(settings, tmp_path):
    """The first builds of a fresh install, several at once: each fetches the bundler, and
    without taking turns about one bundle in five failed with "failed to copy esbuild
    binary". Three fresh caches, six bundles at once on each."""
    program = program_from_source(GREETER)
    for round_ in range(3):
        settings.DENO_DIR = str(tmp_path / f"cache-{round_}")

        def one(n: int) -> str:
            root = tmp_path / f"build-{round_}-{n}"
            root.mkdir()
            return bundle(Workspace(root, program, "", []))

        with ThreadPoolExecutor(max_workers=6) as pool:
            bundles = list(pool.map(one, range(6)))  # a failed bundle raises BuildFailed
        assert all("Hello" in code for code in bundles)
        # Seen in place afterwards (else, were Deno to move it, every bundle would take turns).
        assert bundler_in_place()
