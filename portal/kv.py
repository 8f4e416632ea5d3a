"""The tenant's key-value namespaces in the portal: create one, see which workers bind it,
browse its keys by prefix (values previewed, metadata, expiry), write or delete a key, bind
it to a worker, empty or remove it. Members read; owners and admins change. Audited."""

import re
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from kv import store
from kv.models import BINDING_PATTERN, Binding, Namespace
from tenancy.access import Action, can
from tenancy.audit import record
from tenancy.models import label_validator
from tenancy.quotas import QuotaExceeded, check_room
from workers.models import Worker

from .access import require, visible

PREVIEW = 200  # characters of a value shown in the list


def preview(raw: bytes) -> str:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return f"({len(raw)} bytes, not text)"
    return text if len(text) <= PREVIEW else text[:PREVIEW] + "…"


@login_required
def kv_page(request):
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    require(request, Action.READ, tenant)
    error, status, typed = "", 200, ""
    if request.method == "POST":
        require(request, Action.MANAGE, tenant)
        typed = request.POST.get("name", "").strip()
        try:
            label_validator(typed)
            check_room(tenant, "max_kv_namespaces")
            ns = Namespace.objects.create(tenant=tenant, name=typed[:40],
                                          created_by=request.principal.label)  # fmt: skip
        except QuotaExceeded as exc:
            error, status = exc.message, exc.status
        except IntegrityError:
            error, status = f"There is a namespace named {typed} already.", 409
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 400
        else:
            record(request, tenant, "kv.namespace.create", ns.name)
            return redirect("kv-namespace", code=ns.code)
    keys, size = store.held(tenant)
    context = {
        "namespaces": Namespace.objects.filter(tenant=tenant).prefetch_related("bindings__worker"),
        "keys": keys, "bytes": size, "error": error, "typed": typed,
        "may_manage": can(request.principal, Action.MANAGE, tenant, viewing=True),
    }  # fmt: skip
    return render(request, "kv.html", context, status=status)


@login_required
def namespace_page(request, code):
    ns = visible(request, Namespace.objects.select_related("tenant"), code=code)
    require(request, Action.READ, ns)
    prefix, cursor = request.GET.get("prefix", ""), request.GET.get("cursor", "")
    error = ""
    try:
        page, after = store.listing(ns, prefix[:512], cursor[:2048], 50, with_values=True)
    except store.KvError as exc:
        page, after, error = [], None, str(exc)
    context = {
        "ns": ns, "entries": [(e, preview(bytes(e.value))) for e in page], "prefix": prefix,
        "next": after, "error": error or request.GET.get("error", ""),
        "bindings": ns.bindings.select_related("worker"),
        "workers": Worker.objects.filter(tenant=ns.tenant).order_by("name"),
        "binding_pattern": BINDING_PATTERN,
        "may_manage": can(request.principal, Action.MANAGE, ns, viewing=True),
    }  # fmt: skip
    return render(request, "kv_namespace.html", context)


@login_required
@require_POST
def namespace_act(request, code, act):
    ns = visible(request, Namespace.objects.select_related("tenant"), code=code)
    if act not in ("put", "delete-key", "empty", "delete", "bind", "unbind"):
        raise Http404("No such action.")
    require(request, Action.MANAGE, ns)
    here = redirect("kv-namespace", code=ns.code)
    key = request.POST.get("key", "")
    try:
        if act == "put":
            ttl = request.POST.get("ttl", "").strip()
            store.put(ns, key, request.POST.get("value", "").encode(), float(ttl) if ttl else None)
            record(request, ns.tenant, "kv.put", f"{ns.name} {key}"[:300])
        elif act == "delete-key":
            store.delete(ns, key)
            record(request, ns.tenant, "kv.delete", f"{ns.name} {key}"[:300])
        elif act == "empty":
            removed = store.empty(ns)
            record(request, ns.tenant, "kv.namespace.empty", ns.name, removed=removed)
        elif act == "bind":
            worker = Worker.objects.filter(
                tenant=ns.tenant, name=request.POST.get("worker")
            ).first()
            name = request.POST.get("name", "").strip()
            if worker is None or not re.match(BINDING_PATTERN, name):
                raise store.KvError("Choose a worker and a JavaScript name (letters, digits, _).")
            Binding.objects.update_or_create(worker=worker, name=name, defaults={"namespace": ns})
            record(request, ns.tenant, "kv.bind", f"{worker.name} {name}", namespace=ns.name)
        elif act == "unbind":
            Binding.objects.filter(namespace=ns, pk=request.POST.get("binding") or 0).delete()
            record(request, ns.tenant, "kv.unbind", ns.name)
        else:
            if ns.bindings.exists():
                raise store.KvError("It is bound to workers: unbind it first.")
            ns.delete()
            record(request, ns.tenant, "kv.namespace.delete", ns.name)
            return redirect("kv")
    except (store.KvError, ValueError) as exc:  # said on the page it comes back to
        return redirect(f"{here.url}?error={quote(str(exc))}")
    except QuotaExceeded as exc:
        return redirect(f"{here.url}?error={quote(exc.message)}")
    return here
