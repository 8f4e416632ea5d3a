"""Tenant pages for durable runs: the Runs tab of a worker and the tenant's Runs page (status
badges refreshed by HTMX while anything is in flight), a run's page with its attempts and
their console lines, dead letters (replay, discard), schedules and the retry policy."""

import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from runs import steps
from runs.lifecycle import cancel, dead_letters, discard, policy, replay
from runs.models import Run, Schedule
from runs.schedules import ScheduleError, arm, check, check_quota, next_firings
from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded
from workers.models import Worker

from .access import require, visible
from .deployments import STOP_POLLING

PAGE = 50
RUNS = Run.objects.select_related("worker", "deployment", "schedule")


class RetryPolicyForm(forms.Form):
    attempts = forms.IntegerField(min_value=1, max_value=20, label="Attempts in all")
    backoff_seconds = forms.FloatField(min_value=0, max_value=3600, label="First retry after (s)")
    max_delay_seconds = forms.FloatField(min_value=0, max_value=86400, label="Longest delay (s)")
    retry_on = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Retry when the function",
        choices=[("error", "throws"), ("timeout", "times out"),
                 ("limit", "passes a limit (memory, CPU, result size)")],
    )  # fmt: skip


class ScheduleForm(forms.Form):
    function = forms.ChoiceField()
    cron = forms.CharField(
        max_length=100, initial="*/5 * * * *", label="Cron (min hour day month weekday)"
    )
    time_zone = forms.CharField(max_length=64, initial="UTC", label="Time zone")
    payload = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), initial="{}", required=False
    )

    def __init__(self, *args, functions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["function"].choices = [(f, f) for f in functions]

    def clean(self):
        data = super().clean()
        payload = (data.get("payload") or "").strip() or "null"
        try:
            check(data.get("cron", ""), data.get("time_zone", ""), payload)
        except ScheduleError as exc:
            raise forms.ValidationError(str(exc)) from exc
        data["payload"] = json.dumps(json.loads(payload))
        return data


def filtered(request, queryset):
    status = request.GET.get("status", "")
    function = request.GET.get("function", "")
    if status in Run.Status.values:
        queryset = queryset.filter(status=status)
    if function:
        queryset = queryset.filter(function=function)
    return queryset, {"status": status, "function": function}


def list_context(request, queryset) -> dict:
    queryset, filters = filtered(request, queryset)
    runs = list(queryset.order_by("-created", "-id")[:PAGE])
    return {
        "runs": runs,
        "filters": filters,
        "statuses": Run.Status.values,
        "in_flight": any(r.in_flight for r in runs),
    }


def polled(request, template: str, context: dict):
    response = render(request, template, context)
    if request.htmx and not context["in_flight"]:
        response.status_code = STOP_POLLING
    return response


def worker_for(request, code) -> Worker:
    return visible(request, Worker.objects.select_related("tenant", "production"), code=code)


def runs_tab(request, worker: Worker, schedule_form: "ScheduleForm | None" = None) -> dict:
    """Everything the Runs tab shows; a refused schedule form comes back with its errors."""
    context = list_context(request, RUNS.filter(worker=worker))
    functions = worker.production.functions if worker.production else []
    p = policy(worker)
    context.update(
        worker=worker,
        letters=list(dead_letters(RUNS.filter(worker=worker))[:PAGE]),
        schedules=[(s, next_firings(s, count=3)) for s in worker.schedules.all()],
        schedule_form=schedule_form or ScheduleForm(functions=functions),
        policy_form=RetryPolicyForm(
            initial={
                "attempts": p["max_attempts"],
                "backoff_seconds": p["backoff_seconds"],
                "max_delay_seconds": p["max_delay_seconds"],
                "retry_on": p["retry_on"],
            }
        ),  # fmt: skip
        functions=functions,
    )
    return context


@login_required
def worker_runs(request, code):
    """The Runs tab: runs, dead letters, schedules and the retry policy of one worker."""
    worker = worker_for(request, code)
    if request.htmx and request.GET.get("part") == "list":
        context = list_context(request, RUNS.filter(worker=worker))
        return polled(request, "runs/partials/list.html", {**context, "worker": worker})
    return render(request, "workers/runs.html", runs_tab(request, worker))


@login_required
def tenant_runs(request):
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    context = list_context(request, RUNS.filter(tenant=tenant))
    if request.htmx and request.GET.get("part") == "list":
        return polled(request, "runs/partials/list.html", context)
    context["letters"] = list(dead_letters(RUNS.filter(tenant=tenant))[:PAGE])
    context["functions"] = sorted(
        set(RUNS.filter(tenant=tenant).values_list("function", flat=True)[:500])
    )
    return render(request, "runs/tenant.html", context)


def run_for(request, code) -> Run:
    return visible(request, RUNS.select_related("tenant", "replay_of"), code=code)


@login_required
def run_detail(request, code):
    return run_page(request, run_for(request, code))


def run_page(request, run: Run, error: str = "", status: int = 200):
    attempts = list(run.attempt_set.select_related("deployment"))
    shown = steps.with_lines(list(run.steps.all()), attempts)
    context = {"run": run, "attempts": attempts, "steps": shown, "result": pretty(run.result),
               "payload": pretty(run.payload), "error": error}  # fmt: skip
    if request.htmx and request.GET.get("part") == "status":
        response = render(request, "runs/partials/status.html", context)
        if not run.in_flight:
            response.status_code = STOP_POLLING
        return response
    return render(request, "runs/detail.html", context, status=status)


def pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2) if text else ""
    except ValueError:
        return text


@login_required
@require_POST
def run_act(request, code, act):
    """Replay (on production or on its first deployment) or discard a dead letter."""
    run = run_for(request, code)
    if act not in ("replay", "discard", "event", "cancel"):
        raise Http404("No such action.")
    require(request, Action.INVOKE, run)
    if act == "event":
        return send_event(request, run)
    if act == "cancel":
        if not cancel(run, request.principal.label):
            return run_page(request, run, "Only a run that waits (queued, retrying, sleeping, "
                            "waiting) is canceled; this one is being attempted or has ended.",
                            status=409)  # fmt: skip
        record(request, run.tenant, "run.cancel", run.worker.name, run=str(run.code))
        return redirect("run", code=run.code)
    if act == "discard":
        discard(run, request.principal.label)
        record(request, run.tenant, "run.discard", run.worker.name, run=str(run.code))
        return redirect("run", code=run.code)
    try:
        new = replay(run, request.POST.get("on") != "original", request.principal.label,
                     request.POST.get("from", ""))  # fmt: skip
    except ValueError as exc:  # nothing in production to replay it on
        return run_page(request, run, f"Not replayed: {exc}", status=409)
    record(request, run.tenant, "run.replay", run.worker.name, run=str(run.code), new=str(new.code))
    return redirect("run", code=new.code)


def send_event(request, run: Run):
    """An event for a run that waits (ctx.step.waitForEvent): its payload as JSON."""
    name = request.POST.get("name", "").strip()
    text = request.POST.get("payload", "").strip() or "null"
    try:
        json.loads(text)
    except ValueError:
        return run_page(request, run, "The payload is not JSON.", status=400)
    try:
        steps.send_event(run, name, text, request.principal.label)
    except steps.StepError as exc:
        return run_page(request, run, f"Not sent: {exc}", status=exc.status)
    record(request, run.tenant, "run.event", run.worker.name, run=str(run.code), event=name)
    return redirect("run", code=run.code)


@login_required
@require_POST
def replay_all(request, code):
    """Every dead letter of the worker, replayed on its production."""
    worker = worker_for(request, code)
    require(request, Action.INVOKE, worker)
    if worker.production_id is None:
        context = runs_tab(request, worker)
        context["error"] = "Not replayed: the worker serves nothing in production now."
        return render(request, "workers/runs.html", context, status=409)
    count = 0
    for run in dead_letters(RUNS.filter(worker=worker))[:500]:
        try:
            replay(run, True, request.principal.label)
        except ValueError:
            break
        count += 1
    record(request, worker.tenant, "run.replay_all", worker.name, count=count)
    return redirect("worker-runs", code=worker.code)


@login_required
@require_POST
def retry_policy(request, code):
    worker = worker_for(request, code)
    require(request, Action.DEPLOY, worker)
    form = RetryPolicyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        Worker.objects.filter(pk=worker.pk).update(
            retry_attempts=data["attempts"], retry_backoff_seconds=data["backoff_seconds"],
            retry_max_delay_seconds=data["max_delay_seconds"], retry_on=sorted(data["retry_on"]),
        )  # fmt: skip
        record(request, worker.tenant, "worker.retry_policy", worker.name,
               attempts=data["attempts"], retry_on=sorted(data["retry_on"]))  # fmt: skip
    return redirect("worker-runs", code=worker.code)


@login_required
@require_POST
def new_schedule(request, code):
    worker = worker_for(request, code)
    require(request, Action.DEPLOY, worker)
    functions = worker.production.functions if worker.production else []
    form = ScheduleForm(request.POST, functions=functions)
    if not form.is_valid():
        return render(request, "workers/runs.html", runs_tab(request, worker, form), status=400)
    data = form.cleaned_data
    try:
        check_quota(worker.tenant, data["payload"])
    except QuotaExceeded as exc:
        form.add_error(None, exc.message)
        return render(
            request, "workers/runs.html", runs_tab(request, worker, form), status=exc.status
        )
    schedule = Schedule(
        tenant=worker.tenant, worker=worker, function=data["function"], cron=data["cron"].strip(),
        time_zone=data["time_zone"], payload=data["payload"], created_by=request.principal.label,
    )  # fmt: skip
    arm(schedule)
    schedule.save()
    record(request, worker.tenant, "schedule.create", worker.name, cron=schedule.cron,
           function=schedule.function)  # fmt: skip
    return redirect("worker-runs", code=worker.code)


@login_required
@require_POST
def schedule_act(request, code, act):
    """Pause, resume or delete a schedule."""
    schedule = visible(request, Schedule.objects.select_related("worker", "tenant"), code=code)
    if act not in ("pause", "resume", "delete"):
        raise Http404("No such action.")
    require(request, Action.DEPLOY, schedule)
    if act == "delete":
        schedule.delete()
    else:
        schedule.paused = act == "pause"
        arm(schedule)  # resumed: from now on, no catching up
        schedule.save(update_fields=["paused", "next_fire_at"])
    record(request, schedule.tenant, f"schedule.{act}", schedule.worker.name, cron=schedule.cron)
    return redirect("worker-runs", code=schedule.worker.code)
