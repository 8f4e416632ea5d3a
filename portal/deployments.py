"""Tenant pages for one deployment: its page, the polling status panel, the invoke panel."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deployments.deploy import cancel, secrets_changed_since
from deployments.diff import compare
from deployments.models import Deployment
from releases.production import ReleaseError, set_production
from tenancy.access import Action
from tenancy.audit import record
from tenancy.limits import effective_limits

from .access import require, visible
from .charts import deployment_charts
from .forms import InvokeForm
from .state import deployment_seen, deployment_state_url

# HTMX stops polling on this status (and still swaps the content in).
STOP_POLLING = 286


def deployment_for(request, code) -> Deployment:
    """The deployment if the principal may see it; 404 for everyone else."""
    return visible(
        request, Deployment.objects.select_related("worker", "tenant", "artifact"), code=code
    )


def invoke_context(deployment, form: InvokeForm | None = None) -> dict:
    """What the deployment panel shows (the back end's part comes through template tags)."""
    if form is None:
        form = InvokeForm(functions=deployment.functions)
    return {"deployment": deployment, "invoke_form": form}


@login_required
def deployment_detail(request, code):
    deployment = deployment_for(request, code)
    context = invoke_context(deployment)
    context["charts"] = deployment_charts(deployment, request.GET.get("range", "24h"))
    context["state_url"] = deployment_state_url(deployment)
    return render(request, "deployments/detail.html", context)


@login_required
def deployment_panel(request, code):
    deployment = deployment_for(request, code)
    status = STOP_POLLING if request.htmx and deployment.is_terminal else 200
    context = invoke_context(deployment)
    # On the worker page the final answer also refreshes the production URL section.
    context["on_worker_page"] = request.GET.get("on") == "worker"
    if context["on_worker_page"] and deployment.is_terminal and request.htmx:
        context["build_ended"] = True
        # ...and the other parts that show production: the recent list, the secrets banner.
        worker = deployment.worker
        worker.refresh_from_db()
        context["recent"] = list(worker.deployments.select_related("tenant", "worker")[:5])
        context["pending_secrets"] = (
            secrets_changed_since(worker.production) if worker.production is not None else []
        )
    return render(request, "deployments/partials/panel.html", context, status=status)


@login_required
def deployment_badge(request, code):
    deployment = deployment_for(request, code)
    status = STOP_POLLING if request.htmx and deployment.is_terminal else 200
    return render(
        request, "deployments/partials/badge.html", {"deployment": deployment}, status=status
    )


@login_required
@require_POST
def invoke(request, code):
    deployment = deployment_for(request, code)
    require(request, Action.INVOKE, deployment)
    form = InvokeForm(request.POST, functions=deployment.functions)
    answer = None
    if deployment.status != Deployment.Status.READY:
        form.add_error(None, f"This deployment is {deployment.status}; only ready ones run.")
    elif form.is_valid():
        answer = deployment.runs_on.invoke(
            deployment, form.cleaned_data["function"], form.cleaned_data["payload"]
        )
    context = invoke_context(deployment, form)
    context["answer"] = answer
    if answer is not None:
        body = answer.body
        context["result_json"] = json.dumps(body.get("result"), indent=2) if answer.ok else None
    if request.htmx:  # htmx swaps only 2xx answers, and form errors must show
        return render(request, "deployments/partials/invoke_result.html", context)
    return render(request, "deployments/detail.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def cancel_deployment(request, code):
    deployment = deployment_for(request, code)
    require(request, Action.DEPLOY, deployment)
    context = invoke_context(deployment)
    if cancel(deployment):
        record(request, deployment.tenant, "deployment.cancel", deployment.short_id)
    else:
        context["notice"] = (
            f"Nothing to cancel: the build had already ended ({deployment.get_status_display()})."
        )
    if request.htmx:
        return render(request, "deployments/partials/panel.html", context)
    return redirect("deployment", code=deployment.code)


@login_required
def promote(request, code):
    """GET shows what changes; POST points the worker's production URL at this deployment
    (a promotion, or a rollback to an earlier one)."""
    deployment = deployment_for(request, code)
    worker = deployment.worker
    require(request, Action.DEPLOY, deployment)
    current = worker.production
    if deployment.status != Deployment.Status.READY or current == deployment:
        return redirect("worker", code=worker.code)
    rollback = current is not None and deployment.created < current.created
    error = ""
    if request.method == "POST":
        try:
            action = set_production(worker, deployment, request.principal.label)
        except ReleaseError as exc:
            error = str(exc)
        else:
            record(
                request, deployment.tenant, "production.set", worker.name,
                deployment=deployment.short_id, previous=current.short_id if current else None,
                how=action,
            )  # fmt: skip
            return redirect("worker", code=worker.code)
    before = set(current.functions) if current else set()
    after = set(deployment.functions)
    context = {
        "worker": worker,
        "deployment": deployment,
        "current": current,
        "rollback": rollback,
        "added": sorted(after - before),
        "removed": sorted(before - after),
        "error": error,
    }
    return render(request, "deployments/promote.html", context, status=409 if error else 200)


@login_required
def diff(request, code):
    """What changes from one deployment of a worker to another (`?from=<id>`; by default the
    one before it), rendered here."""
    deployment = deployment_for(request, code)
    others = deployment.worker.deployments.exclude(pk=deployment.pk)
    chosen = request.GET.get("from")
    if chosen:
        try:
            base = others.filter(code=chosen).first()
        except ValidationError:
            base = None
        if base is None:
            raise Http404("No such deployment of this worker.")
    else:
        base = others.filter(created__lt=deployment.created).first() or others.first()
    context = {
        "deployment": deployment,
        "base": base,
        "choices": list(others[:50]),
        "diff": compare(base, deployment) if base else None,
        "limits": effective_limits(deployment.worker),
    }
    return render(request, "deployments/diff.html", context)


@login_required
def deployment_state(request, code):
    """A deployment page's question: is it still production, a preview, the canary (and at
    what share)? 204 while nothing changed, else its role line out of band."""
    deployment = deployment_for(request, code)
    if deployment_seen(deployment) == request.GET.get("seen"):
        return HttpResponse(status=204)
    context = {"deployment": deployment, "state_url": deployment_state_url(deployment), "oob": True}
    return render(request, "deployments/partials/state.html", context)
