"""Builds shared between identical inputs (deployments/build_cache.py): the same files,
lockfile, limits and secrets built by the same Deno and build code give the earlier build's
result at once, and the log says so; anything else builds in full."""

import pytest

from deployments.models import Deployment
from workers.models import Worker
from workers.secrets import seal

from .helpers import GREETER, TYPE_ERROR, build_files, build_now

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # real Deno builds
REUSED = "Build cache: the same files, lockfile, limits and secrets were built at"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, settings):
    """A cache of these tests' own: what other tests built does not count here."""
    settings.BUILD_CACHE_DIR = tmp_path / "build-cache"
    return settings.BUILD_CACHE_DIR


def worker(tenant, name: str, **fields) -> Worker:
    return Worker.objects.create(tenant=tenant, name=name, **fields)


def test_the_same_files_are_built_once_and_the_log_says_so(tenant, other_tenant):
    first = build_now(worker(tenant, "one"), GREETER)
    assert first.status == "ready" and REUSED not in first.build_log
    # Another worker, another tenant even: the same inputs give the same result.
    second = build_now(worker(other_tenant, "two"), GREETER)
    assert second.status == "ready", second.error_message
    assert second.build_log.startswith(REUSED)
    assert "Finding exported functions" in second.build_log  # the earlier build's own log follows
    assert second.artifact_id == first.artifact_id
    assert second.functions == first.functions


def test_a_changed_file_limit_or_secret_builds_in_full(tenant):
    build_now(worker(tenant, "base"), GREETER)
    changed = build_now(worker(tenant, "edited"), GREETER + "\n// edited\n")
    assert changed.status == "ready" and REUSED not in changed.build_log
    more_memory = build_now(worker(tenant, "big", memory_mb=256), GREETER)
    assert more_memory.status == "ready" and REUSED not in more_memory.build_log
    # The startup probe runs with the worker's secrets: other secrets, another build.
    secret = worker(tenant, "secret")
    deployment = Deployment.objects.create(
        worker=secret, tenant=tenant, source=GREETER, secrets_sealed=seal({"TOKEN": "x"})
    )
    from deployments.tasks import build_deployment

    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == "ready" and REUSED not in deployment.build_log


def test_a_failed_build_is_not_kept(tenant, cache_dir):
    for name in ("first", "again"):
        failed = build_now(worker(tenant, name), TYPE_ERROR)
        assert failed.status == "error"
        assert "TS2322" in failed.error_message or "not assignable" in failed.error_message
        assert REUSED not in failed.build_log
    assert not list(cache_dir.glob("*.json"))


PACKAGES = {
    "index.ts": 'import ms from "npm:ms@^2.1.0";\nexport async function f() { return ms(1000); }\n'
}


def test_packages_without_a_lockfile_are_resolved_afresh_and_with_one_reused(tenant):
    first = build_files(worker(tenant, "pkg"), PACKAGES)
    assert first.status == "ready", first.error_message
    # No lockfile to start from (a first build, or "update packages"): the registry may have
    # newer versions, so it is asked again.
    fresh = build_files(worker(tenant, "pkg2"), PACKAGES)
    assert fresh.status == "ready" and REUSED not in fresh.build_log
    # From the lockfile the first build made, the result is the same: reused.
    pinned = build_files(worker(tenant, "pkg3"), PACKAGES, lockfile=first.lockfile)
    assert pinned.status == "ready" and pinned.build_log.startswith(REUSED)
    assert pinned.lockfile == first.lockfile


def test_the_cache_is_trimmed_to_its_size(tenant, cache_dir, settings):
    settings.BUILD_CACHE_MB = 0  # nothing fits: each entry goes as soon as it is kept
    assert build_now(worker(tenant, "a"), GREETER).status == "ready"
    assert not list(cache_dir.glob("*.json"))
    again = build_now(worker(tenant, "b"), GREETER)
    assert again.status == "ready" and REUSED not in again.build_log
