"""The invocation contract, through the real Deno runtime (`manage.py runtime`)."""

import concurrent.futures
import time

import httpx
import pytest
from django.conf import settings

from telemetry.models import Invocation, LogEntry
from workers.models import Worker

from .conftest import wait_for
from .helpers import EDGE_CASES, GREETER, TYPE_ERROR, build_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tenant):
    return Worker.objects.create(tenant=tenant, name="edge", public=True)


@pytest.fixture
def edge(runtime, worker):
    deployment = build_now(worker, EDGE_CASES)
    assert deployment.status == "ready", deployment.error_message
    return deployment


def invoke(host: str, fn: str, body: bytes | str = b"{}", timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{settings.RUNTIME_URL}/d/{host}/api/invoke/{fn}", content=body, timeout=timeout
    )


def test_result_logs_duration_and_request_id(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="greeter", public=True)
    deployment = build_now(worker, GREETER)
    response = invoke(deployment.host, "hello", '{"name": "Ann"}')
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == {"greeting": "Hello, Ann!"}
    assert [(line["seq"], line["level"], line["message"]) for line in body["logs"]] == [
        (0, "log", "hello called"),
        (1, "info", "name is Ann"),
    ]
    assert body["durationMs"] >= 0 and body["requestId"].startswith("req_")
    assert response.headers["x-request-id"] == body["requestId"]

    # Recorded in the background, without the call waiting for the database.
    invocation = wait_for(
        lambda: Invocation.objects.filter(request_id=body["requestId"]).first(),
        10,
        "the invocation row",
    )
    assert invocation.status == "ok" and invocation.function == "hello"
    assert invocation.deployment == deployment and invocation.tenant == tenant
    wait_for(
        lambda: LogEntry.objects.filter(request_id=body["requestId"]).count() == 2, 10, "log rows"
    )


def test_subdomain_url_and_production_url(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="greeter", public=True)
    first = build_now(worker, GREETER)
    # A browser or curl resolves <host>.localhost to loopback and sends that Host header.
    response = httpx.post(
        f"{settings.RUNTIME_URL}/api/invoke/hello",
        headers={"host": f"{first.host}.localhost:{settings.RUNTIME_PORT}"},
        json={"name": "sub"},
    )
    assert response.json()["result"] == {"greeting": "Hello, sub!"}

    production = invoke(worker.host, "hello", '{"name": "prod"}')
    assert production.json()["result"] == {"greeting": "Hello, prod!"}
    second = build_now(worker, GREETER.replace("Hello", "Howdy"))

    def serves_newest():
        return invoke(worker.host, "hello", "{}").json().get("result") == {
            "greeting": "Howdy, world!"
        }

    wait_for(serves_newest, 10, "the production URL to serve the newest deployment", 0.2)
    # The first deployment keeps answering at its own URL: deployments are immutable.
    assert invoke(first.host, "hello", "{}").json()["result"] == {"greeting": "Hello, world!"}
    assert second.status == "ready"


def test_unknown_function_is_404_and_names_the_functions(edge):
    response = invoke(edge.host, "nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "function_not_found"
    assert "echo, fail, spin, nap, untyped" in error["message"]


def test_unknown_deployment_is_404(runtime, db):
    response = invoke("ghost--abcdefgh--acme", "hello")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "deployment_not_found"
    response = httpx.post(f"{settings.RUNTIME_URL}/api/invoke/hello")
    assert response.status_code == 404 and "error" in response.json()


def test_failed_build_is_never_served(runtime, worker):
    deployment = build_now(worker, TYPE_ERROR)
    assert deployment.status == "error"
    response = invoke(deployment.host, "hello")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "deployment_not_ready"


def test_invalid_json_is_400(edge):
    response = invoke(edge.host, "echo", "{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_empty_body_is_null_payload(edge):
    assert invoke(edge.host, "echo", b"").json()["result"] == {"got": None}


def test_too_large_payload_is_413(edge):
    big = b'"' + b"x" * (settings.RUNTIME_MAX_BODY_BYTES + 10) + b'"'
    response = invoke(edge.host, "echo", big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert invoke(edge.host, "echo", '{"a": 1}').json()["result"] == {"got": {"a": 1}}
    # Without a declared length (chunked), the body is counted as it arrives.
    chunks = (b"x" * 65536 for _ in range(settings.RUNTIME_MAX_BODY_BYTES // 65536 + 2))
    chunked = httpx.post(
        f"{settings.RUNTIME_URL}/d/{edge.host}/api/invoke/echo", content=chunks, timeout=30
    )
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "payload_too_large"
    small = httpx.post(
        f"{settings.RUNTIME_URL}/d/{edge.host}/api/invoke/echo",
        content=(part for part in [b'{"a"', b": 2}"]),
        timeout=30,
    )
    assert small.json()["result"] == {"got": {"a": 2}}


def test_throw_is_500_with_message_stack_and_the_lines_before_it(edge):
    response = invoke(edge.host, "fail")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "function_error"
    assert body["error"]["message"] == "the widget is broken"
    assert "at fail" in body["error"]["stack"]
    # The platform's own frames are named, not spelled out as a data: URL.
    assert "base64" not in body["error"]["stack"] and len(body["error"]["stack"]) < 2000
    assert [line["message"] for line in body["logs"]] == ["step one", "step two"]
    assert [line["level"] for line in body["logs"]] == ["log", "warn"]
    invocation = wait_for(
        lambda: Invocation.objects.filter(request_id=body["requestId"]).first(), 10, "invocation"
    )
    assert invocation.status == "error" and invocation.error_message == "the widget is broken"


def test_infinite_loop_is_504_within_the_timeout_and_the_next_call_works(edge):
    started = time.monotonic()
    response = invoke(edge.host, "spin")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    body = response.json()
    assert body["error"]["code"] == "timeout"
    assert body["logs"][0]["message"] == "looping forever"
    assert elapsed < settings.RUNTIME_TIMEOUT_SECONDS + 5
    after = invoke(edge.host, "echo", '"still here"')
    assert after.status_code == 200 and after.json()["result"] == {"got": "still here"}


def test_concurrent_calls_keep_their_own_console_lines(edge):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        calls = [
            pool.submit(invoke, edge.host, "nap", f'{{"ms": {ms}, "tag": "t{i}"}}')
            for i, ms in enumerate([300, 100, 200, 50])
        ]
        answers = [c.result().json() for c in calls]
    for i, body in enumerate(answers):
        assert body["result"] == f"t{i}"
        assert [line["message"] for line in body["logs"]] == [f"start t{i}", f"end t{i}"]


def test_tenant_code_has_no_file_env_process_or_network_access(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="sneaky", public=True)
    deployment = build_now(
        worker,
        """
export async function probe(payload: unknown) {
  const out: Record<string, string> = {};
  const attempt = async (name: string, f: () => unknown) => {
    try { await f(); out[name] = "allowed"; } catch (e) { out[name] = String(e); }
  };
  await attempt("read", () => Deno.readTextFileSync("/etc/passwd"));
  await attempt("env", () => Deno.env.get("SECRET_KEY"));
  await attempt("run", () => new Deno.Command("id").output());
  await attempt("ffi", () => Deno.dlopen("libc.so.6", {}));
  await attempt("net", () => fetch("CONTROL_PLANE/internal/runtime/ingest"));
  return out;
}
""".replace("CONTROL_PLANE", settings.CONTROL_PLANE_URL),
    )
    result = invoke(deployment.host, "probe").json()["result"]
    assert set(result) == {"read", "env", "run", "ffi", "net"}
    for name, outcome in result.items():
        if name == "net":  # fetch goes through the host's egress policy: loopback is refused
            assert "Outbound request refused" in outcome and "loopback" in outcome, outcome
        else:
            assert "NotCapable" in outcome or "Requires" in outcome, (name, outcome)


def test_concurrency_and_result_size_limits(runtime, tenant, settings):
    settings.RUNTIME_MAX_CONCURRENCY = 1
    settings.RUNTIME_MAX_RESULT_BYTES = 100
    deployment = build_now(
        Worker.objects.create(tenant=tenant, name="limits", public=True), EDGE_CASES
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(invoke, deployment.host, "nap", '{"ms": 1500, "tag": "a"}')
        time.sleep(0.5)
        busy = invoke(deployment.host, "echo", "1")
        assert (
            busy.status_code == 429
            and busy.json()["error"]["code"] == "too_many_concurrent_invocations"
        )
        assert busy.headers["retry-after"] == "1"
        assert slow.result().status_code == 200
    big = invoke(deployment.host, "echo", '"' + "x" * 200 + '"')
    assert big.status_code == 500 and big.json()["error"]["code"] == "result_too_large"
    assert invoke(deployment.host, "echo", "1").json()["result"] == {"got": 1}
