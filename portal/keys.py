"""Tenant pages for API keys: list, create (the secret is shown once), revoke."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from tenancy.access import KEY_SCOPES, Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded
from workers.api_keys import issue_key
from workers.models import ApiKey

from .access import require, visible

# What a key is for, in the words of its user, and the scopes that takes. The first is what
# the first call a newcomer makes needs: calling a private worker.
PURPOSES = {
    "call": ("Call my private workers", [Action.INVOKE]),
    "ci": ("Deploy from CI (deploy and read)", [Action.DEPLOY, Action.READ]),
    "read": ("Read only: workers, deployments, logs, runs", [Action.READ]),
    "all": ("All three: deploy, invoke, read", [Action.DEPLOY, Action.INVOKE, Action.READ]),
}
SCOPE_LABELS = {
    Action.DEPLOY: "deploy — create workers and deploy",
    Action.INVOKE: "invoke — call private workers",
    Action.READ: "read — workers, deployments, logs, runs",
    Action.MANAGE: "manage — secrets, log drains, members, the audit log",
}


class KeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Where the key is used, e.g. “GitHub Actions”."
    )
    purpose = forms.ChoiceField(
        choices=[(name, label) for name, (label, _) in PURPOSES.items()],
        widget=forms.RadioSelect,
        initial="call",
        required=False,
    )
    scopes = forms.MultipleChoiceField(
        choices=[(scope.value, SCOPE_LABELS[scope]) for scope in KEY_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Instead of a purpose: exactly these scopes.",
    )

    def clean(self):
        data = super().clean()
        if not data.get("scopes"):
            purpose = data.get("purpose") or "call"
            data["scopes"] = [scope.value for scope in PURPOSES[purpose][1]]
        return data


@login_required
def api_keys(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    require(request, Action.MANAGE, request.tenant, viewing=request.method != "POST")
    form = KeyForm(request.POST or None)
    secret = None
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = issue_key(
                request.tenant, form.cleaned_data["name"], form.cleaned_data["scopes"], request.user
            )
        except QuotaExceeded as exc:
            form.add_error(None, exc.message)
            status = exc.status
        else:
            record(
                request, request.tenant, "key.create", key.name, prefix=key.prefix,
                scopes=key.scopes,
            )  # fmt: skip
            form = KeyForm()
    keys = ApiKey.objects.filter(tenant=request.tenant)
    context = {"form": form, "keys": keys, "secret": secret}
    return render(request, "workers/api_keys.html", context, status=status)


@login_required
@require_POST
def revoke_key(request, pk):
    key = visible(request, ApiKey.objects.select_related("tenant"), pk=pk)
    require(request, Action.MANAGE, key)
    if ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now()):
        record(request, key.tenant, "key.revoke", key.name, prefix=key.prefix)
    return redirect("api-keys")
