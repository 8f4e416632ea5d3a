"""Tenant pages for workers: dashboard, new worker, worker page, redeploy."""

from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from deployments.announce import announce_worker
from deployments.deploy import deploy
from deployments.forms_context import invoke_context
from workers_portal.access import require_deployer
from workers_portal.audit import record
from workers_portal.quotas import QuotaExceeded, check_new_worker, usage

from .forms import DeployForm, NewWorkerForm
from .models import Worker


def worker_for_member(request, code) -> Worker:
    """The worker if the user is a member of its tenant; 404 for everyone else."""
    return get_object_or_404(
        Worker.objects.for_member(request.user).select_related("tenant", "production"), code=code
    )


@login_required
def dashboard(request):
    workers = []
    if request.tenant is not None:
        workers = list(
            Worker.objects.for_member(request.user)
            .filter(tenant=request.tenant)
            .select_related("tenant", "production")
        )
        for worker in workers:
            worker.latest = worker.latest_deployment()
    quotas = usage(request.tenant) if request.tenant is not None else []
    return render(request, "workers/dashboard.html", {"workers": workers, "quotas": quotas})


@login_required
def new_worker(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    require_deployer(request.user, request.tenant)
    form = NewWorkerForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            check_new_worker(request.tenant)
            with transaction.atomic():
                worker = Worker.objects.create(
                    tenant=request.tenant, name=form.cleaned_data["name"]
                )
                deployment = deploy(worker, form.cleaned_data["source"], request.user)
                record(request, worker.tenant, "worker.create", worker.name)
                record(
                    request, worker.tenant, "deploy", worker.name, deployment=deployment.short_id
                )
        except IntegrityError:
            form.add_error("name", "A worker with this name exists already.")
        except QuotaExceeded as exc:
            form.add_error(None, exc.message)
            return render(request, "workers/new.html", {"form": form}, status=429)
        else:
            return redirect("worker", code=worker.code)
    return render(request, "workers/new.html", {"form": form})


def detail_context(worker: Worker, form: DeployForm | None = None) -> dict:
    deployments = list(worker.deployments.select_related("tenant", "worker")[:50])
    latest = deployments[0] if deployments else None
    if form is None:
        form = DeployForm(initial={"source": latest.source if latest else ""})
    context = {"worker": worker, "deployments": deployments, "latest": latest, "form": form}
    if latest is not None:
        context.update(invoke_context(latest))
    return context


@login_required
def worker_detail(request, code):
    worker = worker_for_member(request, code)
    return render(request, "workers/detail.html", detail_context(worker))


@login_required
@require_POST
def redeploy(request, code):
    worker = worker_for_member(request, code)
    require_deployer(request.user, worker.tenant)
    form = DeployForm(request.POST)
    if not form.is_valid():
        return render(request, "workers/detail.html", detail_context(worker, form), status=400)
    try:
        deployment = deploy(worker, form.cleaned_data["source"], request.user)
    except QuotaExceeded as exc:
        form.add_error(None, exc.message)
        return render(request, "workers/detail.html", detail_context(worker, form), status=429)
    record(request, worker.tenant, "deploy", worker.name, deployment=deployment.short_id)
    return redirect("worker", code=worker.code)


@login_required
@require_POST
def set_visibility(request, code):
    worker = worker_for_member(request, code)
    require_deployer(request.user, worker.tenant)
    public = request.POST.get("public") == "1"
    Worker.objects.filter(pk=worker.pk).update(public=public)
    announce_worker(worker)  # hosts check access with what they cached: refresh it
    record(request, worker.tenant, "worker.visibility", worker.name, public=public)
    return redirect("worker", code=worker.code)


@login_required
def delete_worker(request, code):
    """GET asks to confirm; POST deletes the worker with its deployments and logs."""
    worker = worker_for_member(request, code)
    require_deployer(request.user, worker.tenant)
    if request.method == "POST":
        if request.POST.get("confirm_name") != worker.name:
            return render(
                request, "workers/delete.html", {"worker": worker, "mismatch": True}, status=400
            )
        worker.delete()
        record(request, worker.tenant, "worker.delete", worker.name)
        return redirect("dashboard")
    return render(request, "workers/delete.html", {"worker": worker})
