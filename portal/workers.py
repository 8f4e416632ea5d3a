"""Tenant pages for workers: dashboard, new worker, worker page, redeploy, visibility, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from deployments.backends import backend_for_worker
from deployments.deploy import delete_worker as delete_with_deployments
from deployments.deploy import deploy, secrets_changed_since, set_visibility
from deployments.models import Deployment
from releases.production import canary_metrics, canary_steps
from telemetry.metrics import series
from telemetry.models import TenantMetric
from tenancy.access import Action
from tenancy.audit import record
from tenancy.middleware import SESSION_KEY
from tenancy.quotas import QuotaExceeded, check_new_worker, usage
from workers import invocation_secrets
from workers.models import Worker

from .access import require, visible
from .charts import tenant_chart_context, worker_chart_context
from .deployments import invoke_context
from .forms import DeployForm, NewWorkerForm
from .health import worker_health
from .state import focus_token, overview_parts, overview_state

WORKERS_PER_PAGE = 50


def worker_for(request, code) -> Worker:
    """The worker if the principal may see it; 404 for everyone else."""
    return visible(
        request, Worker.objects.select_related("tenant", "production", "canary"), code=code
    )


@login_required
def dashboard(request):
    if request.tenant is None and request.user.is_staff:
        return redirect("operators")  # an operator in no tenant: the platform, not a dead end
    if request.tenant is None:
        return render(request, "workers/dashboard.html", {"workers": [], "quotas": []})
    tenant = request.tenant
    query = request.GET.get("q", "").strip()
    found = Worker.objects.visible_to(request.principal).filter(tenant=tenant).order_by("name")
    if query:
        found = found.filter(name__icontains=query)
    # The list shows names, states and URLs: the programs' text stays in the database.
    found = found.select_related("tenant", "production").defer(
        "production__source", "production__files"
    )
    page = Paginator(found, WORKERS_PER_PAGE).get_page(request.GET.get("page"))
    workers = list(page.object_list)
    latest = Deployment.latest_of(workers, "source", "files")
    for worker in workers:
        worker.latest = latest.get(worker.pk)
    this_minute = timezone.now().replace(second=0, microsecond=0)
    calls = TenantMetric.objects.filter(tenant=tenant, period="m", start=this_minute)
    context = {
        "workers": workers,
        "page": page,
        "query": query,
        "quotas": usage(tenant, calls.aggregate(n=Sum("calls"))["n"] or 0),
    }
    if page.paginator.count:
        context["chart"] = tenant_chart_context(tenant, request.GET.get("range", "24h"))
    return render(request, "workers/dashboard.html", context)


@login_required
@require_POST
def switch_tenant(request):
    """Work in another of the user's tenants (the dashboard and tenant-wide pages follow)."""
    chosen = next(
        (t for t in request.principal.tenants if t.slug == request.POST.get("tenant")), None
    )
    if chosen is not None:
        request.session[SESSION_KEY] = chosen.pk
    return redirect("dashboard")


@login_required
def new_worker(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    require(request, Action.DEPLOY, request.tenant)
    form = NewWorkerForm(request.POST or None, request.FILES or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            check_new_worker(request.tenant)
            with transaction.atomic():
                worker = Worker.objects.create(
                    tenant=request.tenant, name=form.cleaned_data["name"]
                )
                deployment = deploy(worker, form.cleaned_data["program"], request.user)
                record(request, worker.tenant, "worker.create", worker.name)
                record(
                    request, worker.tenant, "deploy", worker.name, deployment=deployment.short_id
                )
        except IntegrityError:
            form.add_error("name", "A worker with this name exists already.")
        except QuotaExceeded as exc:
            form.add_error(None, exc.message)
            return render(request, "workers/new.html", {"form": form}, status=exc.status)
        else:
            return redirect("worker", code=worker.code)
    return render(request, "workers/new.html", {"form": form})


def detail_context(worker: Worker, form: DeployForm | None = None) -> dict:
    deployments = list(worker.deployments.select_related("tenant", "worker")[:50])
    latest = deployments[0] if deployments else None
    if form is None:
        base = program_base(worker)
        form = DeployForm(initial={"source": base.source if base else ""}, base=base)
    context = {
        "worker": worker,
        "deployments": deployments,
        "recent": deployments[:5],
        "latest": latest,
        "form": form,
    }
    if worker.production is not None:
        context["pending_secrets"] = secrets_changed_since(worker.production)
    context["canary_sides"] = canary_metrics(worker)
    context["canary_steps"] = canary_steps(worker)
    if latest is not None:
        context.update(invoke_context(latest))
    return context


@login_required
def worker_detail(request, code):
    """The Overview tab: production, the latest deployment, recent activity."""
    worker = worker_for(request, code)
    # The health panel and the chart (24 hours unless another range is picked) read one
    # series.
    ids = list(worker.deployments.values_list("pk", flat=True))
    day = series(ids, "24h")
    range_name = request.GET.get("range", "24h")
    context = {"worker": worker, "health": worker_health(ids, day)}
    # Production first: the panel (and its invoke form and curl line) calls what production
    # serves, unless the latest deployment is asked for (a preview, or a failed build).
    # The page then asks every few seconds whether any of this changed (portal.state).
    context.update(overview_state(worker, request.GET.get("show") == "latest"))
    context.update(overview_parts(worker))
    if context["focus"] is not None:
        context.update(invoke_context(context["focus"]))
    context["chart"] = worker_chart_context(
        worker, range_name, ids, day if range_name == "24h" else None
    )
    return render(request, "workers/detail.html", context)


@login_required
def worker_deployments(request, code):
    """The Deployments tab: every deployment, and a new version deployed from here."""
    worker = worker_for(request, code)
    return render(request, "workers/deployments.html", detail_context(worker))


@login_required
def worker_settings(request, code):
    """The Settings tab: visibility, secrets and deletion, each as the role allows."""
    worker = worker_for(request, code)
    context = {
        "worker": worker,
        "secret_count": worker.secrets.count(),
        "plain_settings": list(worker.plain_settings.all()),
        "invocation_secrets": list(worker.invocation_secrets.all()[:20]),
        "on_vercel": backend_for_worker(worker).name == "vercel",
    }
    return render(request, "workers/settings.html", context)


@login_required
@require_POST
def invocation_secret(request, code, act):
    """Make a new invocation secret (shown once) or revoke one; admins, as for API keys."""
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker)
    if act == "issue":
        try:
            made, value = invocation_secrets.issue(worker, request.principal.label)
        except invocation_secrets.TooMany as exc:
            messages.error(request, str(exc))
        else:
            record(
                request, worker.tenant, "worker.invocation_secret", worker.name, prefix=made.prefix
            )
            messages.success(request, f"New invocation secret (shown once, keep it now): {value}")
    elif act == "revoke":
        secret = worker.invocation_secrets.filter(code=request.POST.get("secret", "")).first()
        if secret is None:
            raise Http404("No such invocation secret.")
        if invocation_secrets.revoke(secret):
            record(request, worker.tenant, "worker.invocation_secret_revoked", worker.name,
                   prefix=secret.prefix)  # fmt: skip
            messages.success(request, f"{secret.prefix}… is revoked: callers that send it are "
                             "refused within seconds.")  # fmt: skip
    else:
        raise Http404("No such action.")
    return redirect("worker-settings", code=worker.code)


def program_base(worker: Worker):
    """The deployment a pasted entry module is merged into: the newest with files."""
    return worker.deployments.exclude(files={}).first()


def deploy_from_page(
    request, worker: Worker, form: DeployForm, program, update_lock=False, **details
):
    """A new deployment of `program`, then the worker page; the quota's refusal on the form."""
    try:
        deployment = deploy(worker, program, request.user, update_lock=update_lock)
    except QuotaExceeded as exc:
        form.add_error(None, exc.message)
        context = detail_context(worker, form)
        return render(request, "workers/deployments.html", context, status=429)
    record(request, worker.tenant, "deploy", worker.name, deployment=deployment.short_id, **details)
    return redirect("worker", code=worker.code)


@login_required
@require_POST
def redeploy(request, code):
    worker = worker_for(request, code)
    require(request, Action.DEPLOY, worker)
    form = DeployForm(request.POST, request.FILES, base=program_base(worker))
    if not form.is_valid():
        return render(request, "workers/deployments.html", detail_context(worker, form), status=400)
    data = form.cleaned_data
    return deploy_from_page(request, worker, form, data["program"], data["update_lock"])


@login_required
@require_POST
def redeploy_production(request, code):
    """The production deployment's code again, with the worker's secrets as they are now."""
    worker = worker_for(request, code)
    require(request, Action.DEPLOY, worker)
    if worker.production is None:
        return redirect("worker", code=worker.code)
    serving = worker.production
    form = DeployForm(initial={"source": serving.source}, base=serving)
    return deploy_from_page(request, worker, form, serving.program, reason="secrets changed")


@login_required
@require_POST
def auto_promote(request, code):
    """On: each ready deployment goes live at once. Off: it waits, a preview, for a promote."""
    worker = worker_for(request, code)
    require(request, Action.DEPLOY, worker)
    on = request.POST.get("auto_promote") == "1"
    Worker.objects.filter(pk=worker.pk).update(auto_promote=on)
    record(request, worker.tenant, "worker.auto_promote", worker.name, on=on)
    return redirect("worker-settings", code=worker.code)


@login_required
@require_POST
def visibility(request, code):
    """Public or private: admins guard private workers with keys, so it is their call."""
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker)
    public = request.POST.get("public") == "1"
    set_visibility(worker, public)
    record(request, worker.tenant, "worker.visibility", worker.name, public=public)
    return redirect("worker", code=worker.code)


@login_required
def delete_worker(request, code):
    """GET asks to confirm; POST deletes the worker with its deployments and logs."""
    worker = worker_for(request, code)
    require(request, Action.DEPLOY, worker)
    if request.method == "POST":
        if request.POST.get("confirm_name") != worker.name:
            return render(
                request, "workers/delete.html", {"worker": worker, "mismatch": True}, status=400
            )
        delete_with_deployments(worker)
        record(request, worker.tenant, "worker.delete", worker.name)
        return redirect("dashboard")
    return render(request, "workers/delete.html", {"worker": worker})


@login_required
def worker_state(request, code):
    """The Overview's question: 204 while nothing changed, else its parts out of band."""
    worker = worker_for(request, code)
    context = overview_state(worker, request.GET.get("show") == "latest")
    if context["seen"] == request.GET.get("seen"):
        return HttpResponse(status=204)
    context.update(overview_parts(worker))
    focus = context["focus"]
    # The invoke form stays as typed unless the deployment it calls is another one now (or
    # the same one in another state: its build ended).
    context["focus_moved"] = focus_token(focus) != request.GET.get("focus", "")
    if focus is not None:
        context.update(invoke_context(focus))
    return render(request, "workers/partials/state.html", {**context, "oob": True})


@login_required
def health_panel(request, code):
    """The Overview's 24-hour figures again (the panel asks every 30 s, saying as of when)."""
    worker = worker_for(request, code)
    ids = list(worker.deployments.values_list("pk", flat=True))
    context = {"worker": worker, "health": worker_health(ids, series(ids, "24h"))}
    return render(request, "workers/partials/health.html", context)
