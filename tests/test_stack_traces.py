"""Stack traces name the tenant's own files: an error thrown in the second file of a program
reads `lib/orders.ts:line:col` (not a position in the bundle) in the call's answer, in a
console line that prints it, in a run's attempt (API and portal) and in the portal's invoke
panel, through the real build and the real runtime."""

import json

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from runs import lifecycle
from telemetry.models import LogEntry
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import client_for, wait_for
from .helpers import build_files

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ORDERS = """\
interface Order {
  id: string;
  qty: number;
}

export function check(order: Order): Order {
  if (order.qty < 1) {
    throw new RangeError(`order ${order.id} has no items`);
  }
  return order;
}
"""
INDEX = """\
import { check } from "./lib/orders.ts";

type Payload = { id: string; qty: number };

export async function place(payload: Payload) {
  return check(payload);
}

export async function audit(payload: Payload) {
  try {
    check(payload);
  } catch (err) {
    console.error(err);
  }
  return "audited";
}
"""
THROWN = "at check (lib/orders.ts:8:11)"  # where `new RangeError` stands
PLACED = "at place (index.ts:6:10)"  # where each calls `check(payload)`
AUDITED = "at audit (index.ts:11:5)"


def in_our_files(stack: str, called: str = PLACED) -> None:
    assert THROWN in stack and called in stack, stack
    assert "blob:" not in stack and "bundle.js" not in stack


def test_a_throw_in_a_second_file_is_named_in_that_file_everywhere(runtime, tenant, owner):
    worker = Worker.objects.create(tenant=tenant, name="orders", public=True, retry_attempts=1)
    deployment = build_files(worker, {"index.ts": INDEX, "lib/orders.ts": ORDERS})
    assert deployment.status == "ready", deployment.error_message
    url = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke"
    empty = {"id": "A1", "qty": 0}

    answer = httpx.post(f"{url}/place", json=empty, timeout=30)
    assert answer.status_code == 500
    assert answer.json()["error"]["message"] == "order A1 has no items"
    in_our_files(answer.json()["error"]["stack"])

    printed = httpx.post(f"{url}/audit", json=empty, timeout=30)
    assert printed.json()["result"] == "audited"
    request_id = printed.headers["x-request-id"]
    line = wait_for(lambda: LogEntry.objects.filter(request_id=request_id).first(), 10, "the line")
    assert line.level == "error"
    in_our_files(line.message, AUDITED)

    run, _ = lifecycle.accept(deployment, "place", json.dumps(empty))
    assert lifecycle.execute(run.pk) == "dead"
    key = issue_key(tenant, "ci", ["read"])[1]
    shown = Client(HTTP_AUTHORIZATION=f"Bearer {key}").get(f"/api/runs/{run.code}").json()
    in_our_files(shown["attempts"][0]["error"]["stack"])
    portal = client_for(Client, owner)
    in_our_files(portal.get(reverse("run", args=[run.code])).content.decode())

    panel = portal.post(
        reverse("invoke", args=[deployment.code]),
        {"function": "place", "payload": json.dumps(empty)},
        HTTP_HX_REQUEST="true",
    )
    in_our_files(panel.content.decode())
