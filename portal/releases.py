"""Tenant pages for careful releases: a canary per worker (start, change its share, promote
or cancel, both sides' figures refreshed live), and releases of several workers at once."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deployments.models import Deployment
from releases.models import Release, ReleaseItem
from releases.production import (
    ReleaseError,
    canary_metrics,
    canary_steps,
    end_canary,
    promote_release,
    revert_release,
    start_canary,
)
from tenancy.access import Action
from tenancy.audit import record
from workers.models import Worker

from .access import require, visible
from .deployments import STOP_POLLING


class CanaryForm(forms.Form):
    percent = forms.IntegerField(
        min_value=1, max_value=99, initial=10, label="Share of traffic (%)"
    )
    auto_rollback = forms.BooleanField(
        required=False, initial=True, label="Roll back by itself when it fails more"
    )
    margin = forms.FloatField(
        min_value=0, max_value=100, initial=5.0,
        label="…than production's error rate plus (percentage points)",
    )  # fmt: skip
    min_calls = forms.IntegerField(
        min_value=1, max_value=100000, initial=20, label="…once it has answered at least (calls)"
    )


def canary_context(worker: Worker) -> dict:
    return {"worker": worker, "sides": canary_metrics(worker), "steps": canary_steps(worker)}


@login_required
def canary_start(request, code):
    """GET: the form to start a canary with this deployment; POST: start it."""
    deployment = visible(request, Deployment.objects.select_related("worker", "tenant"), code=code)
    worker = deployment.worker
    require(request, Action.DEPLOY, deployment, viewing=request.method == "GET")
    form = CanaryForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            start_canary(
                worker, deployment, data["percent"], request.principal.label,
                auto_rollback=data["auto_rollback"], margin=data["margin"],
                min_calls=data["min_calls"],
            )  # fmt: skip
        except ReleaseError as exc:
            error = str(exc)
        else:
            record(
                request, worker.tenant, "canary.start", worker.name,
                deployment=deployment.short_id, percent=data["percent"],
            )  # fmt: skip
            return redirect("worker", code=worker.code)
    context = {"worker": worker, "deployment": deployment, "form": form, "error": error}
    status = 409 if error else 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "deployments/canary.html", context, status=status)


@login_required
def canary_panel(request, code):
    """The canary's figures, for HTMX to refresh; polling stops when no canary runs."""
    worker = visible(
        request, Worker.objects.select_related("tenant", "production", "canary"), code=code
    )
    response = render(request, "workers/partials/canary.html", canary_context(worker))
    if worker.canary_id is None:
        response.status_code = STOP_POLLING
    return response


@login_required
@require_POST
def canary_change(request, code):
    """Change the canary's share, promote it (all traffic), or cancel it (none)."""
    worker = visible(
        request, Worker.objects.select_related("tenant", "production", "canary"), code=code
    )
    require(request, Action.DEPLOY, worker)
    action = request.POST.get("action", "")
    canary = worker.canary
    error = ""
    try:
        if canary is None:
            error = "No canary is under way (it may have ended by itself)."
        elif action == "percent":
            try:
                percent = int(request.POST.get("percent", ""))
            except ValueError:
                percent = 0
            start_canary(worker, canary, percent, request.principal.label)
            record(request, worker.tenant, "canary.percent", worker.name,
                   deployment=canary.short_id, percent=percent)  # fmt: skip
        elif action in ("promote", "cancel"):
            end_canary(worker, request.principal.label, promote=action == "promote")
            record(request, worker.tenant, f"canary.{action}", worker.name,
                   deployment=canary.short_id)  # fmt: skip
        else:
            error = "Choose a share, promote or cancel."
    except ReleaseError as exc:
        error = str(exc)
    if request.htmx:
        worker.refresh_from_db()
        context = {**canary_context(worker), "error": error}
        response = render(request, "workers/partials/canary.html", context)
        response["HX-Trigger"] = "production-changed"
        return response
    return redirect("worker", code=worker.code)


# --- releases ------------------------------------------------------------------------------


def releasable(tenant) -> list[tuple[Worker, list[Deployment]]]:
    """Each worker of the tenant with its ready deployments, newest first."""
    workers = list(Worker.objects.filter(tenant=tenant).select_related("production"))
    ready = {}
    for d in Deployment.objects.filter(tenant=tenant, status=Deployment.Status.READY).order_by(
        "-created"
    ):
        ready.setdefault(d.worker_id, [])
        if len(ready[d.worker_id]) < 20:
            ready[d.worker_id].append(d)
    return [(w, ready.get(w.pk, [])) for w in workers]


@login_required
def releases(request):
    """The tenant's releases, and a form to make a new one."""
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    error = ""
    if request.method == "POST":
        require(request, Action.DEPLOY, tenant)
        chosen = {}
        for worker, deployments in releasable(tenant):
            picked = request.POST.get(f"w{worker.pk}", "")
            match = next((d for d in deployments if str(d.code) == picked), None)
            if match is not None:
                chosen[worker] = match
        name = request.POST.get("name", "").strip()[:100]
        if not name:
            error = "Give the release a name."
        elif len(chosen) < 1:
            error = "Choose a ready deployment for at least one worker."
        else:
            release = Release.objects.create(
                tenant=tenant, name=name, created_by=request.principal.label
            )
            ReleaseItem.objects.bulk_create(
                ReleaseItem(release=release, worker=w, deployment=d) for w, d in chosen.items()
            )
            record(request, tenant, "release.create", name,
                   deployments={w.name: d.short_id for w, d in chosen.items()})  # fmt: skip
            return redirect("release", code=release.code)
    listing = Release.objects.filter(tenant=tenant).prefetch_related(
        "items__worker", "items__deployment"
    )
    context = {"releases": listing[:50], "candidates": releasable(tenant), "error": error}
    return render(request, "releases/list.html", context, status=400 if error else 200)


def release_for(request, code) -> Release:
    return visible(request, Release.objects.select_related("tenant"), code=code)


@login_required
def release_detail(request, code):
    release = release_for(request, code)
    items = list(release.items.select_related("worker__production", "deployment"))
    return render(request, "releases/detail.html", {"release": release, "items": items})


@login_required
@require_POST
def release_act(request, code, act):
    """Promote the release (every worker at once) or revert it (the set before, at once)."""
    release = release_for(request, code)
    if act not in ("promote", "revert"):
        raise Http404("No such action.")
    require(request, Action.DEPLOY, release)
    try:
        if act == "promote":
            generation = promote_release(release, request.principal.label)
        else:
            generation = revert_release(release, request.principal.label)
    except ReleaseError as exc:
        items = list(release.items.select_related("worker__production", "deployment"))
        context = {"release": release, "items": items, "error": str(exc)}
        return render(request, "releases/detail.html", context, status=409)
    record(request, release.tenant, f"release.{act}", release.name, generation=generation)
    return redirect("release", code=release.code)
