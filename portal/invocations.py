"""Invocation history: every call of a worker or of one deployment, newest first, with
filters (status, function or path, deployment, time range) and pages by id, so a page is
an index walk however many calls there are."""

from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from deployments.models import Deployment
from telemetry.models import Invocation
from workers.models import Worker

from .access import visible

PAGE = 50


def when(text: str) -> datetime | None:
    """A datetime-local field's value, in the user's time zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def history(request, queryset, deployments: list[Deployment]) -> dict:
    params = request.GET
    filters = {k: params.get(k, "") for k in ("status", "function", "deployment", "since", "until")}
    if filters["status"] in Invocation.Status.values:
        queryset = queryset.filter(status=filters["status"])
    if filters["function"]:
        queryset = queryset.filter(function=filters["function"])
    chosen = next((d for d in deployments if d.short_id == filters["deployment"]), None)
    if chosen is not None:
        queryset = queryset.filter(deployment=chosen)
    if since := when(filters["since"]):
        queryset = queryset.filter(started_at__gte=since)
    if until := when(filters["until"]):
        queryset = queryset.filter(started_at__lt=until)
    before = params.get("before", "")
    if before.isdigit():
        queryset = queryset.filter(pk__lt=int(before))
    page = list(queryset.select_related("deployment").order_by("-id")[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return {
        "invocations": page,
        "filters": filters,
        "statuses": Invocation.Status.values,
        "deployments": deployments,
        "next_query": f"{query}&before={page[-1].pk}".lstrip("&") if more else "",
    }


@login_required
def worker_invocations(request, code):
    worker = visible(request, Worker.objects.select_related("tenant"), code=code)
    deployments = list(worker.deployments.only("pk", "short_id", "code", "created")[:100])
    queryset = Invocation.objects.filter(deployment__in=[d.pk for d in deployments])
    context = {**history(request, queryset, deployments), "worker": worker}
    return render(request, "workers/invocations.html", context)


@login_required
def deployment_invocations(request, code):
    deployment = visible(request, Deployment.objects.select_related("worker", "tenant"), code=code)
    context = {
        **history(request, deployment.invocations.all(), [deployment]),
        "worker": deployment.worker,
        "deployment": deployment,
    }
    return render(request, "workers/invocations.html", context)
