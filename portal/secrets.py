"""Tenant pages for a worker's secrets (write-only values, shown masked) and, beside them,
its plain settings (values shown)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded, check_room
from workers.models import WorkerSecret, WorkerSetting
from workers.plain_settings import SettingError, is_a_setting, set_setting
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


class SettingForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="Read in code as ctx.env.NAME.")
    value = forms.CharField(strip=False, max_length=4096, required=False)


def page(request, worker, form=None, setting_form=None, status=200):
    context = {
        "worker": worker,
        "form": form or SecretForm(),
        "setting_form": setting_form or SettingForm(),
        "secrets": worker.secrets.all(),
        "settings": worker.plain_settings.all(),
    }
    return render(request, "workers/secrets.html", context, status=status)


@login_required
def worker_secrets(request, code):
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker, viewing=request.method != "POST")
    if request.method == "POST" and "setting" in request.POST:
        return save_setting(request, worker)
    form = SecretForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        try:
            if is_a_setting(worker, name):
                form.add_error(
                    "name", f"{name} is a plain setting of {worker.name}: remove it first."
                )
                return page(request, worker, form, status=400)
            if not worker.secrets.filter(name=name).exists():
                check_room(worker.tenant, "max_secrets")
        except QuotaExceeded as exc:
            form.add_error("name", exc.message)
            return page(request, worker, form, status=exc.status)
        WorkerSecret.objects.update_or_create(
            worker=worker,
            name=form.cleaned_data["name"],
            defaults={"value_encrypted": encrypt(form.cleaned_data["value"])},
        )
        record(request, worker.tenant, "secret.set", f"{worker.name} {form.cleaned_data['name']}")
        return redirect("worker-secrets", code=worker.code)
    return page(request, worker, form, status=400 if request.method == "POST" else 200)


def save_setting(request, worker):
    form = SettingForm(request.POST)
    if form.is_valid():
        name, value = form.cleaned_data["name"].strip(), form.cleaned_data["value"]
        try:
            set_setting(worker, name, value)
        except SettingError as exc:
            form.add_error("name", str(exc))
        except QuotaExceeded as exc:
            form.add_error("name", exc.message)
        else:
            record(request, worker.tenant, "setting.set", f"{worker.name} {name}", value=value)
            return redirect("worker-secrets", code=worker.code)
    return page(request, worker, setting_form=form, status=400)


@login_required
@require_POST
def delete_secret(request, code, name):
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker)
    get_object_or_404(WorkerSecret, worker=worker, name=name).delete()
    record(request, worker.tenant, "secret.delete", f"{worker.name} {name}")
    return redirect("worker-secrets", code=worker.code)


@login_required
@require_POST
def delete_setting(request, code, name):
    worker = worker_for(request, code)
    require(request, Action.MANAGE, worker)
    get_object_or_404(WorkerSetting, worker=worker, name=name).delete()
    record(request, worker.tenant, "setting.delete", f"{worker.name} {name}")
    return redirect("worker-secrets", code=worker.code)
