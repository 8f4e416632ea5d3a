"""`make bench`, logs part: console.log -> visible latency (SSE stream and the portal's 0.5 s
tail poll) and ingest throughput, against the real stack."""

import concurrent.futures
import json
import threading
import time

import httpx
from stack import deploy_and_wait, pct, running_stack, settings

from telemetry.models import LogEntry
from tenancy.models import Membership, Tenant
from workers.models import Worker

SOURCE = """\
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export async function tick(p: { n: number; gapMs: number }) {
  for (let i = 0; i < p.n; i++) {
    console.log(`tick ${i}`);
    await sleep(p.gapMs);
  }
  return p.n;
}
export async function burst(p: { lines: number }) {
  for (let i = 0; i < p.lines; i++) console.log(`burst line ${i}`);
  return p.lines;
}
"""


def login(username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=settings.CONTROL_PLANE_URL, timeout=60)
    client.get("/login/")
    client.post("/login/", data={"username": username, "password": password,
                                 "csrfmiddlewaretoken": client.cookies["csrftoken"]})  # fmt: skip
    return client


def ms_since(iso: str, now: float) -> float:
    from datetime import datetime

    return (now - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1000


def sse_latencies(client, worker, deployment, n=200, gap_ms=20):
    latencies, ready = [], threading.Event()

    def listen():
        with client.stream("GET", f"/api/workers/{worker.code}/logs", timeout=60) as response:
            for line in response.iter_lines():
                if line.startswith(": caught up"):
                    ready.set()
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if data["message"].startswith("tick"):
                        latencies.append(ms_since(data["timestamp"], time.time()))
                        if len(latencies) == n:
                            return

    listener = threading.Thread(target=listen)
    listener.start()
    ready.wait(10)
    httpx.post(f"{deployment.path_url}/api/invoke/tick", json={"n": n, "gapMs": gap_ms}, timeout=60)
    listener.join(30)
    return latencies


def poll_latencies(client, worker, deployment, n=100, gap_ms=20, every=0.5):
    url = f"/api/workers/{worker.code}/logs/poll"
    cursor = client.get(url).json()["cursor"]
    call = threading.Thread(
        target=httpx.post,
        args=(f"{deployment.path_url}/api/invoke/tick",),
        kwargs={"json": {"n": n, "gapMs": gap_ms}, "timeout": 60},
    )
    call.start()
    latencies = []
    while len(latencies) < n:
        time.sleep(every)  # as often as the portal tail asks
        body = client.get(url, params={"cursor": cursor}).json()
        now = time.time()
        cursor = body["cursor"]
        latencies += [
            ms_since(line["timestamp"], now)
            for line in body["lines"]
            if line["message"].startswith("tick")
        ]
    call.join()
    return latencies


def ingest_throughput(deployment, calls=10, lines=1000):
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(
            lambda _: httpx.post(f"{deployment.path_url}/api/invoke/burst", json={"lines": lines}, timeout=60).json(),
            range(calls),
        ))  # fmt: skip
    ids = [a["requestId"] for a in answers]
    while LogEntry.objects.filter(request_id__in=ids).count() < calls * lines:
        time.sleep(0.01)
    return calls * lines / (time.perf_counter() - started)


def main():
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="benchlogs", defaults={"name": "Bench logs"})
        from django.contrib.auth import get_user_model

        User = get_user_model()
        user = User.objects.filter(username="bench").first() or User.objects.create_user(
            "bench", password="bench-pw-1"
        )
        Membership.objects.get_or_create(user=user, tenant=tenant)
        worker, _ = Worker.objects.update_or_create(
            tenant=tenant, name="logger", defaults={"public": True}
        )
        deployment = deploy_and_wait(worker, SOURCE + f"// {time.time()}\n")
        client = login("bench", "bench-pw-1")
        httpx.post(f"{deployment.path_url}/api/invoke/tick", json={"n": 1, "gapMs": 0})  # warm

        print("measuring SSE latency...", flush=True)
        sse = sse_latencies(client, worker, deployment)
        print("measuring portal tail latency...", flush=True)
        poll = poll_latencies(client, worker, deployment)
        print("measuring ingest throughput...", flush=True)
        rates = [ingest_throughput(deployment) for _ in range(3)]

        print("\n| console.log to visible | n | p50 ms | p95 ms |")
        print("|---|---|---|---|")
        print(
            f"| SSE stream (`/api/workers/<id>/logs`) | {len(sse)} | {pct(sse, 50):.0f} | {pct(sse, 95):.0f} |"
        )
        print(
            f"| portal tail (polls every 0.5 s) | {len(poll)} | {pct(poll, 50):.0f} | {pct(poll, 95):.0f} |"
        )
        print(f"\ningest throughput, 10 concurrent calls x 1000 lines, runtime -> stored: "
              f"{', '.join(f'{r:,.0f}' for r in rates)} lines/s (3 runs)")  # fmt: skip


if __name__ == "__main__":
    main()
