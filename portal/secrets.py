"""Tenant pages for a worker's secrets: write-only values, shown masked."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded, check_room
from workers.models import WorkerSecret
from workers.secrets import NAME, encrypt

from .access import require
from .workers import worker_for


class SecretForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Read in code as process.env.NAME.")
    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False), strip=False, max_length=32768
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not NAME.match(name):
            raise forms.ValidationError(
                "Use capital letters, digits and _, starting with a letter or _."
            )
        return name


@login_required
def worker_secrets(request, code):
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker, viewing=request.method != "POST")
    form = SecretForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        try:
            if not worker.secrets.filter(name=name).exists():
                check_room(worker.tenant, "max_secrets")
        except QuotaExceeded as exc:
            form.add_error("name", exc.message)
            context = {"worker": worker, "form": form, "secrets": worker.secrets.all()}
            return render(request, "workers/secrets.html", context, status=exc.status)
        WorkerSecret.objects.update_or_create(
            worker=worker,
            name=form.cleaned_data["name"],
            defaults={"value_encrypted": encrypt(form.cleaned_data["value"])},
        )
        record(request, worker.tenant, "secret.set", f"{worker.name} {form.cleaned_data['name']}")
        return redirect("worker-secrets", code=worker.code)
    return render(
        request,
        "workers/secrets.html",
        {"worker": worker, "form": form, "secrets": worker.secrets.all()},
    )


@login_required
@require_POST
def delete_secret(request, code, name):
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker)
    get_object_or_404(WorkerSecret, worker=worker, name=name).delete()
    record(request, worker.tenant, "secret.delete", f"{worker.name} {name}")
    return redirect("worker-secrets", code=worker.code)
