"""`make bench`, last part: promote-to-serving time on the local back end. A worker with two
ready deployments is switched back and forth (promote, then roll back) and its production
URL is called until it answers from the deployment just promoted.

Runs the real stack (uvicorn, so runtime hosts follow announcements) started by
bin/with-test-services.
"""

import os
import time

import httpx
from stack import deploy_and_wait, pct, public_worker, running_stack, settings

from deployments.releases import set_production
from workers_portal.models import Tenant

SWITCHES = int(os.environ.get("BENCH_SWITCHES", "40"))
VERSION = 'export async function version(payload: unknown) {{ return "{tag}"; }}\n'


def main():
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
    print(f"\nPromote-to-serving, local back end, {SWITCHES} switches")
    print("| p50 ms | p95 ms | max ms |\n|---|---|---|")
    print(f"| {pct(took, 50):.0f} | {pct(took, 95):.0f} | {max(took):.0f} |")


if __name__ == "__main__":
    main()
