"""Portal log pages: the live tail of a worker or a deployment, and one invocation."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from deployments.models import Deployment
from telemetry.logs import (
    LogFilter,
    cursor_from,
    kept,
    latest_lines,
    lines_after,
    lines_before,
    of_worker,
)
from telemetry.models import Invocation, LogEntry

from .deployments import deployment_for
from .workers import worker_for

TAIL_BATCH = 500


@dataclass
class Scope:
    kind: str  # "worker" or "deployment"
    obj: object
    lines: object
    title: str

    def urls(self) -> dict:
        code = self.obj.code
        return {
            "page_url": reverse(f"{self.kind}-logs", args=[code]),
            "tail_url": reverse(f"{self.kind}-logs-tail", args=[code]),
            "older_url": reverse(f"{self.kind}-logs-older", args=[code]),
        }


def scope_for(request, kind: str, code) -> Scope:
    """The log lines a member may read in this scope; 404 for everyone else. Lines alone: the
    pages show nothing of a line's deployment, and joining it brought a deployment's program
    text along with each of up to 500 lines."""
    base = LogEntry.objects.all()
    if kind == "worker":
        worker = worker_for(request, code)
        return Scope(kind, worker, of_worker(base, worker), worker.name)
    deployment = deployment_for(request, code)
    title = f"{deployment.worker.name} · {deployment.short_id}"
    return Scope(kind, deployment, base.filter(deployment=deployment), title)


def scope_functions(scope: Scope) -> list[str]:
    """What the function filter offers: the exported functions of the scope's deployments
    (and `fetch` for raw HTTP), read from them, never by scanning millions of lines."""
    if scope.kind == "worker":
        deployments = scope.obj.deployments.values_list("functions", "http")[:200]
    else:
        deployments = [(scope.obj.functions, scope.obj.http)]
    names = set()
    for functions, http in deployments:
        names.update(functions or [])
        if http:
            names.add("fetch")
    return sorted(names)


def tail_context(scope: Scope, filters: LogFilter, cursor: int, paused: bool = False) -> dict:
    return {
        **scope.urls(),
        "scope": scope,
        "filters": filters,
        "paused": paused,
        "cursor": cursor,
        "tail_query": filters.query(cursor=cursor),
        "pause_query": filters.query(cursor=cursor, paused=1),
    }


@login_required
def log_page(request, kind, code):
    scope = scope_for(request, kind, code)
    filters = LogFilter.from_params(request.GET)
    before = cursor_from(request.GET.get("before"))
    matching = filters.apply(scope.lines)
    if before is not None:  # the "older" link, followed without htmx
        lines = lines_before(matching, before, settings.LOG_PAGE_SIZE)
    else:
        lines = latest_lines(matching, settings.LOG_PAGE_SIZE)
    # The tail follows every line after the newest one stored, matching or not.
    newest = scope.lines.order_by("-id").values_list("id", flat=True).first() or 0
    context = tail_context(scope, filters, newest)
    context.update(
        lines=lines[::-1],
        older_query=filters.query(before=lines[0].id) if lines else "",
        levels=LogEntry.Level.values,
        functions=scope_functions(scope),
    )
    template = "deployments/partials/log_panel.html" if request.htmx else "deployments/logs.html"
    return render(request, template, context)


@login_required
def log_tail(request, kind, code):
    """New lines after the cursor (prepended by htmx), and the poller with the new cursor."""
    scope = scope_for(request, kind, code)
    filters = LogFilter.from_params(request.GET)
    cursor = cursor_from(request.GET.get("cursor")) or 0
    paused = request.GET.get("paused") == "1"
    new_lines = []
    if not paused:
        # Read past non-matching lines too, so the cursor moves over them.
        batch = lines_after(scope.lines, cursor, TAIL_BATCH)
        if batch:
            cursor = batch[-1].id
            new_lines = kept(filters, scope.lines, batch)[::-1]
    context = tail_context(scope, filters, cursor, paused)
    context["new_lines"] = new_lines
    return render(request, "deployments/partials/log_tail.html", context)


@login_required
def log_older(request, kind, code):
    scope = scope_for(request, kind, code)
    filters = LogFilter.from_params(request.GET)
    before = cursor_from(request.GET.get("before")) or 0
    lines = lines_before(filters.apply(scope.lines), before, settings.LOG_PAGE_SIZE)
    context = {
        **scope.urls(),
        "scope": scope,
        "older_lines": lines[::-1],
        "older_query": filters.query(before=lines[0].id) if lines else "",
    }
    return render(request, "deployments/partials/log_older.html", context)


@login_required
def invocation_detail(request, request_id):
    invocation = (
        Invocation.objects.visible_to(request.principal)
        .select_related("deployment__worker")
        .filter(request_id=request_id)
        .first()
    )
    # The lines alone (a call may print thousands); their deployment is read once below.
    lines = list(
        LogEntry.objects.visible_to(request.principal)
        .filter(request_id=request_id)
        .order_by("seq", "id")
    )
    if invocation is None and not lines:
        raise Http404("No such invocation.")
    deployment = (
        invocation.deployment
        if invocation
        else Deployment.objects.select_related("worker").get(pk=lines[0].deployment_id)
    )
    context = {
        "invocation": invocation,
        "lines": lines,
        "request_id": request_id,
        "deployment": deployment,
    }
    return render(request, "deployments/invocation.html", context)
