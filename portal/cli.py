"""The `functions` CLI in the portal: how to install it (the platform serves the package),
and the page where a member approves a CLI's sign-in (workers.key_requests)."""

import io
import tarfile
import tomllib
from functools import lru_cache
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render

from tenancy.access import SUSPENDED, acts
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded
from workers import key_requests

CLI_DIR = Path(settings.BASE_DIR) / "cli"
PACKAGE_FILES = ("pyproject.toml", "README.md", "functions_cli")


def cli_version() -> str:
    return tomllib.loads((CLI_DIR / "pyproject.toml").read_text())["project"]["version"]


def left_out(name: str) -> bool:
    """Not in the package: caches, the runtime's tests and hidden entries (runtime/.venv is a
    link to the platform's whole virtual environment)."""
    parts = name.split("/")
    return (
        "__pycache__" in parts
        or ("/runtime/" in name and name.endswith("_test.ts"))
        or any(part.startswith(".") for part in parts[1:])
    )


@lru_cache(maxsize=1)
def package() -> tuple[str, bytes]:
    """The CLI's source package (what `pip install <url>` builds), made once per process."""
    version = cli_version()
    top = f"functions_cli-{version}"
    buffer = io.BytesIO()
    # Dereferenced: functions_cli/runtime is a link to the platform's runtime/ (`functions
    # dev` runs it), which the package carries as files; its tests stay here.
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as archive:
        for name in PACKAGE_FILES:
            archive.add(
                CLI_DIR / name,
                arcname=f"{top}/{name}",
                filter=lambda info: None if left_out(info.name) else info,
            )
    return f"{top}.tar.gz", buffer.getvalue()


def package_download(request, name):
    expected, data = package()
    if name != expected:
        raise Http404("No such package: this platform serves " + expected)
    response = HttpResponse(data, content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def install_command(request) -> str:
    name, _ = package()
    return f"pip install {request.build_absolute_uri('/cli/' + name)}"


@login_required
def install(request):
    context = {
        "command": install_command(request),
        "url": request.build_absolute_uri("/"),
        "version": cli_version(),
    }
    return render(request, "cli/install.html", context)


class ApproveForm(forms.Form):
    tenant = forms.ChoiceField(label="Tenant it works in")
    scopes = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        label="It may",
        required=True,
        error_messages={
            "invalid_choice": "Your role does not allow %(value)s; a key may have only the "
            "scopes shown, which your role allows.",
            "required": "Choose at least one thing it may do.",
        },
    )

    def __init__(self, *args, user, tenants, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenants = {t.slug: t for t in tenants}
        self.fields["tenant"].choices = [(t.slug, t.name) for t in tenants]
        every = sorted({s for t in tenants for s in key_requests.scopes_for(user, t)})
        self.fields["scopes"].choices = [(s, s) for s in every]
        self.fields["scopes"].initial = every
        self.user = user

    def clean(self):
        data = super().clean()
        tenant = self.tenants.get(data.get("tenant", ""))
        if tenant is None:
            raise forms.ValidationError("Choose one of your tenants.")
        allowed = key_requests.scopes_for(self.user, tenant)
        refused = [s for s in data.get("scopes", []) if s not in allowed]
        if refused:
            raise forms.ValidationError(
                f"Your role in {tenant.name} does not allow {', '.join(refused)}; it allows "
                f"{', '.join(allowed) or 'nothing a key can do'}."
            )
        data["tenant"] = tenant
        return data


@login_required
def approve(request):
    code = (request.POST.get("code") or request.GET.get("code") or "").strip()
    asked = key_requests.pending(code) if code else None
    context: dict = {"code": code, "asked": asked}
    if asked is None:
        if code:
            context["error"] = (
                "No sign-in waits with that code: it may have expired (10 minutes) or been "
                "decided already. Run `functions login` again."
            )
        return render(request, "cli/approve.html", context, status=404 if code else 200)
    form = ApproveForm(
        request.POST if request.method == "POST" else None,
        user=request.user,
        tenants=request.principal.tenants,
    )
    if request.method == "POST" and request.POST.get("decision") == "deny":
        key_requests.deny(asked, request.user)
        return render(request, "cli/approve.html", {**context, "denied": True})
    if request.method == "POST" and form.is_valid():
        tenant = form.cleaned_data["tenant"]
        try:
            if not acts(tenant):
                raise key_requests.NotDecidable(SUSPENDED)
            key = key_requests.approve(asked, request.user, tenant, form.cleaned_data["scopes"])
        except (key_requests.NotDecidable, QuotaExceeded) as exc:
            form.add_error(None, getattr(exc, "message", str(exc)))
        else:
            record(request, tenant, "key.create", key.name, prefix=key.prefix,
                   scopes=key.scopes, via="functions login")  # fmt: skip
            return render(request, "cli/approve.html", {**context, "approved": key})
    return render(request, "cli/approve.html", {**context, "form": form})
