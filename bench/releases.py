"""`make bench`, releases: promote-to-serving time on both back ends, and the switch of a
release of two workers.

Local back end: a worker with two ready deployments is switched back and forth (promote,
then roll back) and its production URL is called until it answers from the deployment just
promoted. A release of two workers is measured the same way, until both answer new.

Vercel back end: against the stand-in Vercel API (tests/fake_vercel.py, the real API cannot
be reached from here), until the production alias points at the deployment just promoted:
the platform's part (commit, Celery task, the alias call). Vercel's own edge propagation
comes on top on the real service.

Runs the real stack (uvicorn, so runtime hosts follow announcements; a Celery worker)
started by bin/with-test-services.
"""

import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fake_vercel

SWITCHES = int(os.environ.get("BENCH_SWITCHES", "40"))
VERSION = 'export async function version(payload: unknown) {{ return "{tag}"; }}\n'


def fake_vercel_env():
    """The stand-in Vercel API, and the settings that point this process and the Celery
    worker at it (set before the stack starts, so the worker inherits them)."""
    from tests.fake_vercel import FakeVercel

    fake = FakeVercel().start()
    fake.queued_seconds, fake.building_seconds = 0.1, 0.2
    values = {
        "VERCEL_API_URL": fake.url,
        "VERCEL_API_TOKEN": fake.token,
        "VERCEL_TEAM_ID": fake.team_id,
        "VERCEL_WORKER_PROJECT_ID": fake.project_id,
        "VERCEL_ALIAS_DOMAIN": "fn.example.net",
    }
    os.environ.update(values)
    return fake, values


def main():
    fake, values = fake_vercel_env()
    from stack import deploy_and_wait, pct, public_worker, running_stack, settings

    for name, value in values.items():
        setattr(settings, name, value)
    from releases.models import Release, ReleaseItem
    from releases.production import promote_release, revert_release, set_production
    from tenancy.models import Tenant
    from workers.models import Worker

    rows = []
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        worker = public_worker(tenant, "releases")
        a = deploy_and_wait(worker, VERSION.format(tag="a"))
        b = deploy_and_wait(worker, VERSION.format(tag="b"))
        url = f"{settings.RUNTIME_URL}/d/{worker.host}/api/invoke/version"
        with httpx.Client(timeout=10) as client:
            client.post(url, json={})  # the host learns the worker first
            time.sleep(2)
            took = []
            for n in range(SWITCHES):
                target, tag = (a, "a") if n % 2 == 0 else (b, "b")
                started = time.monotonic()
                set_production(worker, target, "bench")
                while client.post(url, json={}).json().get("result") != tag:
                    time.sleep(0.002)
                took.append((time.monotonic() - started) * 1000)
            rows.append(("promote or roll back, local (until the production URL answers)", took))

            # A release of two workers: until both production URLs answer from the new set.
            other = public_worker(tenant, "releases-2")
            c = deploy_and_wait(other, VERSION.format(tag="c"))
            d = deploy_and_wait(other, VERSION.format(tag="d"))
            release = Release.objects.create(tenant=tenant, name="bench")
            ReleaseItem.objects.create(release=release, worker=worker, deployment=b)
            ReleaseItem.objects.create(release=release, worker=other, deployment=d)
            set_production(worker, a, "bench")
            set_production(other, c, "bench")
            url2 = f"{settings.RUNTIME_URL}/d/{other.host}/api/invoke/version"
            client.post(url2, json={})
            time.sleep(2)
            took = []
            for n in range(SWITCHES):
                started = time.monotonic()
                if n % 2 == 0:
                    promote_release(release, "bench")
                    want = ("b", "d")
                else:
                    revert_release(release, "bench")
                    want = ("a", "c")
                while (
                    client.post(url, json={}).json().get("result"),
                    client.post(url2, json={}).json().get("result"),
                ) != want:
                    time.sleep(0.002)
                took.append((time.monotonic() - started) * 1000)
            rows.append(("release of 2 workers, local (until both answer new)", took))

        # Vercel: until the production alias points at the promoted deployment.
        tenant.backend = "vercel"
        tenant.save()
        remote = Worker.objects.update_or_create(tenant=tenant, name="on-vercel")[0]
        e = deploy_and_wait(remote, VERSION.format(tag="e"))
        f = deploy_and_wait(remote, VERSION.format(tag="f"))
        alias = f"{remote.host}.fn.example.net"
        took = []
        for n in range(SWITCHES):
            target = e if n % 2 == 0 else f
            started = time.monotonic()
            set_production(remote, target, "bench")
            while fake.alias_target(alias) != target.backend_id:
                if time.monotonic() - started > 30:
                    state = Worker.objects.filter(pk=remote.pk).values(
                        "production", "alias_target", "alias_error"
                    )[0]
                    raise SystemExit(f"The alias did not move: {fake.aliases} {state}")
                time.sleep(0.002)
            took.append((time.monotonic() - started) * 1000)
        rows.append(("promote or roll back, Vercel (until the alias moved)", took))
    fake.stop()
    print(f"\nPromote-to-serving, {SWITCHES} switches each")
    print("| change | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
    for label, took in rows:
        print(f"| {label} | {pct(took, 50):.0f} | {pct(took, 95):.0f} | {max(took):.0f} |")


if __name__ == "__main__":
    main()
