"""`make bench`: what a runtime host waits for when it looks a host up in the control plane
(`GET /internal/runtime/hosts/<host>`, through uvicorn as in production): a first call that
comes before its deployment's announcement, and every host's refresh when its cached
answer expires.

Four lookups, each of a ready deployment with a one-file program or with a 2 MB upload
(its files, source and build log, as a large program has): by the deployment's own host
and by its worker's production host. `have=` names the code the host holds, as a refresh
does, so the answer carries configuration only.
"""

import os

import httpx
from stack import SOURCE, pct, public_worker, ready_copy, running_stack, settings

from deployments.models import Artifact, Deployment
from tenancy.models import Tenant
from workers.models import Worker

CALLS = int(os.environ.get("BENCH_CALLS", "300"))
LARGE = "x" * 700_000  # three of these: the 2 MB upload


def timed(client: httpx.Client, url: str) -> list[float]:
    for _ in range(300):  # warm-up: connections, the server's first requests
        client.get(url).raise_for_status()
    out = []
    for _ in range(CALLS):
        answer = client.get(url)
        answer.raise_for_status()
        out.append(answer.elapsed.total_seconds() * 1000)
    return out


def main() -> None:
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        artifact = Artifact.store(f"// bench lookup\n{SOURCE}")
        headers = {"Authorization": f"Bearer {settings.RUNTIME_TOKEN}"}
        print(f"GET /internal/runtime/hosts/<host>?have=<its code>, {CALLS} each, ms\n")
        print("| deployment | host | p50 | p95 |\n|---|---|---|---|")
        with httpx.Client(
            base_url=settings.CONTROL_PLANE_URL, headers=headers, timeout=30
        ) as client:
            for size, name in (("one file", "small"), ("2 MB upload", "large")):
                worker = public_worker(tenant, name)
                deployment = ready_copy(worker, artifact)
                if name == "large":
                    Deployment.objects.filter(pk=deployment.pk).update(
                        files={"index.ts": LARGE}, source=LARGE, build_log=LARGE
                    )
                Worker.objects.filter(pk=worker.pk).update(production=deployment)
                for which, host in (("its own", deployment.host), ("production", worker.host)):
                    ms = timed(client, f"/internal/runtime/hosts/{host}?have={artifact.sha256}")
                    print(f"| {size} | {which} | {pct(ms, 50):.2f} | {pct(ms, 95):.2f} |")


if __name__ == "__main__":
    main()
