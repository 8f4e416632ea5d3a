"""Workers that are real programs: npm packages, node built-ins, several files and a fetch
handler serving raw HTTP, through the real build and the real runtime."""

import hashlib
import hmac
import json

import httpx
import pytest
from django.conf import settings

from deployments.models import Deployment
from deployments.program import ProgramError, program_from_files
from telemetry.models import Invocation, LogEntry
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import wait_for
from .helpers import build_files, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# What a tenant writes: validation with zod, dates with date-fns, a JWT signed by a package
# that uses node's crypto, buffer and stream, a helper in a second file, and a fetch handler
# for a webhook (HMAC over the raw body), an HTML page, a redirect and a streamed body.
INDEX = """\
import { z } from "npm:zod@3.23.8";
import { addDays, formatISO } from "npm:date-fns@3.6.0";
import jwt from "npm:jsonwebtoken@9.0.2";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { page } from "./lib/page.ts";

const Order = z.object({ id: z.string(), days: z.number().int().min(0) });

export async function due(payload: unknown) {
  const order = Order.parse(payload);
  return { id: order.id, due: formatISO(addDays(new Date(Date.UTC(2026, 0, 1)), order.days), { representation: "date" }) };
}

export async function token(payload: { sub: string }) {
  return { token: jwt.sign({ sub: payload.sub }, "shh", { algorithm: "HS256", noTimestamp: true }) };
}

let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    console.log(`${request.method} ${url.pathname}`);
    if (url.pathname === "/webhook") {
      const raw = Buffer.from(await request.arrayBuffer());
      const expected = createHmac("sha256", "whsec").update(raw).digest();
      const given = Buffer.from(request.headers.get("x-signature") ?? "", "hex");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return new Response("bad signature", { status: 401 });
      }
      return Response.json({ ok: true, bytes: raw.length, auth: request.headers.get("authorization") });
    }
    if (url.pathname === "/old") return Response.redirect(new URL("/", url), 302);
    if (url.pathname === "/release") {
      release();
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/stream") {
      const encoder = new TextEncoder();
      const body = new ReadableStream({
        async start(controller) {
          controller.enqueue(encoder.encode("first\\n"));
          await released; // the test reads "first" before it lets the rest go
          controller.enqueue(encoder.encode("second\\n"));
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    }
    if (url.pathname === "/boom") throw new Error("handler broke");
    return new Response(page(url.searchParams.get("name") ?? "world"), {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  },
};
"""
PAGE = program("programs/page")


@pytest.fixture
def shop(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="shop", public=True)
    deployment = build_files(worker, {"index.ts": INDEX, "lib/page.ts": PAGE})
    assert deployment.status == "ready", deployment.error_message
    return deployment


def url(deployment, path: str) -> str:
    return f"{settings.RUNTIME_URL}/d/{deployment.host}{path}"


def test_packages_and_node_builtins_work_and_are_pinned(shop):
    assert shop.functions == ["due", "token"] and shop.http
    answer = httpx.post(url(shop, "/api/invoke/due"), json={"id": "A1", "days": 45}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"id": "A1", "due": "2026-02-15"}
    invalid = httpx.post(url(shop, "/api/invoke/due"), json={"id": 7}, timeout=30)
    assert (
        invalid.status_code == 500
        and "ZodError" in invalid.json()["error"]["message"] + (invalid.json()["error"]["stack"])
    )
    token = httpx.post(url(shop, "/api/invoke/token"), json={"sub": "ann"}, timeout=30)
    expected = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbm4ifQ."
    assert token.json()["result"]["token"].startswith(expected)
    pinned = {(p["name"], p["version"]) for p in shop.packages}
    assert {("zod", "3.23.8"), ("date-fns", "3.6.0"), ("jsonwebtoken", "9.0.2")} <= pinned
    assert ("ms", "2.1.3") in pinned  # a dependency of a dependency is pinned too
    assert '"jsonwebtoken@9.0.2"' in shop.lockfile and "integrity" in shop.lockfile


def test_same_files_and_lock_give_the_same_artifact(shop):
    again = build_files(shop.worker, shop.files, lockfile=shop.lockfile)
    assert again.status == "ready" and again.artifact_id == shop.artifact_id


def test_the_lock_holds_a_range_until_an_update_is_asked_for(tenant):
    worker = Worker.objects.create(tenant=tenant, name="pinned")
    old = build_files(
        worker,
        {
            "index.ts": 'import ms from "npm:ms@2.1.2";\nexport async function f() { return ms(1000); }\n'
        },
    )
    assert ("ms", "2.1.2") in {(p["name"], p["version"]) for p in old.packages}
    ranged = {
        "index.ts": 'import ms from "npm:ms@^2.1.0";\nexport async function f() { return ms(1000); }\n'
    }
    lock = json.loads(old.lockfile)
    lock["specifiers"] = {"npm:ms@^2.1.0": "2.1.2"}  # what a lock made for the range holds
    kept = build_files(worker, ranged, lockfile=json.dumps(lock))
    assert kept.status == "ready", kept.error_message
    assert [(p["name"], p["version"]) for p in kept.packages] == [("ms", "2.1.2")]
    updated = build_files(worker, ranged)  # no lock: the newest matching version
    assert [(p["name"], p["version"]) for p in updated.packages] == [("ms", "2.1.3")]


def test_deploy_starts_from_the_lock_production_runs_with(tenant):
    from deployments.deploy import current_lock

    worker = Worker.objects.create(tenant=tenant, name="locked")
    first = build_files(
        worker,
        {
            "index.ts": 'import ms from "npm:ms@2.1.2";\nexport async function f() { return ms(1000); }\n'
        },
    )
    worker.refresh_from_db()
    assert worker.production == first and current_lock(worker) == first.lockfile != ""


def test_a_type_error_in_a_second_file_names_file_line_and_column(tenant):
    worker = Worker.objects.create(tenant=tenant, name="typed")
    deployment = build_files(
        worker,
        {
            "index.ts": 'import { total } from "./lib/sum.ts";\nexport async function f() { return total([1, 2]); }\n',
            "lib/sum.ts": 'export function total(xs: number[]): number {\n  return xs.join("+");\n}\n',
        },
    )
    assert deployment.status == "error"
    assert (
        "lib/sum.ts, line 2, column 3: TS2322 Type 'string' is not assignable to type 'number'."
        in deployment.error_message
    )
    assert "/tmp" not in deployment.error_message
    assert deployment.diagnostics == [
        {
            "file": "lib/sum.ts",
            "line": 2,
            "column": 3,
            "message": "TS2322 Type 'string' is not assignable to type 'number'.",
        }
    ]  # what the editor marks


def test_webhook_checks_an_hmac_over_the_raw_body(shop):
    body = b'{"event": "paid",  "amount": 12.50}'  # spacing kept: the raw bytes are signed
    good = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    ok = httpx.post(url(shop, "/webhook"), content=body, headers={"x-signature": good}, timeout=30)
    assert ok.status_code == 200 and ok.json() == {"ok": True, "bytes": len(body), "auth": None}
    bad = httpx.post(
        url(shop, "/webhook"), content=body + b" ", headers={"x-signature": good}, timeout=30
    )
    assert bad.status_code == 401 and bad.text == "bad signature"


def test_html_page_redirect_and_records(shop):
    page = httpx.get(url(shop, "/?name=Ada"), timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text == "<!doctype html><title>Hi</title><h1>Hello, Ada!</h1>"
    request_id = page.headers["x-request-id"]
    invocation = wait_for(
        lambda: Invocation.objects.filter(request_id=request_id).first(), 10, "the invocation"
    )
    assert invocation.function == "fetch" and invocation.status == "ok"
    assert invocation.status_code == 200 and invocation.deployment == shop
    line = wait_for(lambda: LogEntry.objects.filter(request_id=request_id).first(), 10, "its line")
    assert line.message == "GET /"
    moved = httpx.get(url(shop, "/old"), timeout=30)
    assert moved.status_code == 302 and moved.headers["location"].endswith("/")
    broken = httpx.get(url(shop, "/boom"), timeout=30)
    assert broken.status_code == 500
    assert broken.json()["error"] == {
        "code": "function_error",
        "message": "handler broke",
        "stack": broken.json()["error"]["stack"],
    }


def test_a_streamed_body_arrives_while_the_handler_still_writes(shop):
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", url(shop, "/stream")) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_text()
        assert next(chunks) == "first\n"  # before the rest exists
        assert client.get(url(shop, "/release")).status_code == 204
        assert "".join(chunks) == "second\n"


def test_a_private_fetch_handler_needs_a_key_it_never_sees(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="hook")  # private by default
    deployment = build_files(worker, {"index.ts": INDEX, "lib/page.ts": PAGE})
    body = b"{}"
    signature = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    anonymous = httpx.post(
        url(deployment, "/webhook"), content=body, headers={"x-signature": signature}, timeout=30
    )
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    key = issue_key(tenant, "caller", ["invoke"])[1]
    headers = {"x-signature": signature, "authorization": f"Bearer {key}"}
    answer = httpx.post(url(deployment, "/webhook"), content=body, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["auth"] is None


def test_raw_http_limits_and_a_deployment_without_a_handler(shop, tenant):
    too_big = httpx.post(
        url(shop, "/webhook"), content=b"x" * (settings.RUNTIME_MAX_BODY_BYTES + 1), timeout=30
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    worker = Worker.objects.create(tenant=tenant, name="plain", public=True)
    plain = build_files(worker, {"index.ts": "export async function f() { return 1; }\n"})
    assert plain.status == "ready" and not plain.http
    answer = httpx.get(url(plain, "/"), timeout=30)
    assert answer.status_code == 404
    assert "no fetch handler" in answer.json()["error"]["message"]
    assert httpx.post(url(plain, "/api/invoke/f"), timeout=30).json()["result"] == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "index.ts": 'import x from "npm:no-such-package-zq81x@1";\nexport async function f() { return x; }\n'
            },
            "index.ts imports 'npm:no-such-package-zq81x@1': the package no-such-package-zq81x does not exist in the npm registry.",
        ),
        (
            {
                "index.ts": 'import { z } from "npm:zod@99.0.0";\nexport async function f() { return z; }\n'
            },
            "index.ts imports 'npm:zod@99.0.0': no version of the package zod matches 99.0.0.",
        ),
        (
            {
                "index.ts": 'import { join } from "jsr:@std/path@1";\nexport async function f() { return join("a"); }\n'
            },
            "the JSR registry (jsr.io) could not be reached from this platform's build machines",
        ),
        (
            {
                "index.ts": 'import x from "https://example.com/x.ts";\nexport async function f() { return x; }\n'
            },
            "index.ts imports 'https://example.com/x.ts': imports from example.com:443 are not allowed",
        ),
        (
            {
                "index.ts": "let i = 0;\nwhile (true) i++;\nexport async function f() { return i; }\n"
            },
            "did not finish loading within the startup limit of 400 ms of CPU time",
        ),
        (
            {
                "index.ts": 'throw new Error("config missing");\nexport async function f() { return 1; }\n'
            },
            "The module failed to load: Error: config missing",
        ),
        (
            {
                "index.ts": 'import { cfg } from "./lib/config.ts";\nexport async function f() { return cfg; }\n',
                "lib/config.ts": 'type C = { url: string };\nfunction load(): C {\n  throw new Error("CONFIG_URL is not set");\n}\nexport const cfg: C = load();\n',
            },
            "The module failed to load: Error: CONFIG_URL is not set\nat load (lib/config.ts:3:9)",
        ),
        (
            {"index.ts": "export default { fetch: 42 };\n"},
            "The default export is a object, not a fetch handler",
        ),
    ],
    ids=[
        "unknown-package",
        "unknown-version",
        "jsr-unreachable",
        "other-host",
        "startup-loop",
        "throws-at-load",
        "throws-at-load-in-a-second-file",
        "not-a-handler",
    ],
)
def test_bad_programs_fail_the_build_with_a_message_naming_why(tenant, files, message):
    worker = Worker.objects.create(tenant=tenant, name="bad")
    deployment = build_files(worker, files)
    assert deployment.status == "error"
    assert message in deployment.error_message
    worker.refresh_from_db()
    assert worker.production is None and deployment.artifact is None


def test_an_artifact_over_the_size_limit_fails_naming_its_size(tenant, settings):
    settings.MAX_ARTIFACT_BYTES = 50_000
    worker = Worker.objects.create(tenant=tenant, name="big")
    deployment = build_files(
        worker,
        {
            "index.ts": 'import { z } from "npm:zod@3.23.8";\nexport async function f() { return z.string().parse("x"); }\n'
        },
    )
    assert deployment.status == "error"
    assert "over the limit of 50,000 bytes" in deployment.error_message
    assert Deployment.objects.filter(worker=worker, artifact__isnull=False).count() == 0


def test_the_sample_worker_shows_a_package_and_a_fetch_handler(runtime, tenant):
    from workers.samples import SAMPLE_SOURCE

    worker = Worker.objects.create(tenant=tenant, name="sample", public=True)
    deployment = build_files(worker, {"index.ts": SAMPLE_SOURCE})
    assert deployment.status == "ready", deployment.error_message
    assert deployment.functions == ["hello", "add", "duration"] and deployment.http
    answer = httpx.post(
        url(deployment, "/api/invoke/duration"), json={"text": "2 days"}, timeout=30
    )
    assert answer.json()["result"] == {"milliseconds": 172_800_000}
    page = httpx.get(url(deployment, "/docs"), timeout=30)
    assert page.text == "<!doctype html><title>Hello</title><h1>Hello from /docs</h1>"
    assert [(p["name"], p["version"]) for p in deployment.packages] == [("ms", "2.1.3")]


def test_an_import_map_in_deno_json_names_packages_and_folders(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="mapped", public=True)
    files = {
        "deno.jsonc": '{\n  // comments are fine here\n  "imports": {"ms": "npm:ms@2.1.3", "@/": "./src/"},\n'
        '  "exports": "./src/main.ts",\n}\n',
        "src/main.ts": 'import ms from "ms";\nimport { twice } from "@/twice.ts";\n'
        "export async function f(p: { t: string }) { return twice(ms(p.t)); }\n",
        "src/twice.ts": "export const twice = (n: number) => n * 2;\n",
    }
    deployment = build_files(worker, files)
    assert deployment.status == "ready", deployment.error_message
    assert deployment.entry == "src/main.ts"
    answer = httpx.post(url(deployment, "/api/invoke/f"), json={"t": "1s"}, timeout=30)
    assert answer.json()["result"] == 2000
    outside = {
        "deno.json": '{"imports": {"secret": "/etc/hostname"}}',
        "index.ts": "export async function f() {}\n",
    }
    with pytest.raises(ProgramError, match='sends "secret" to "/etc/hostname"'):
        program_from_files(outside)
