"""Tenant pages for members: list, change roles, remove, invite by email, accept."""

import secrets

from django import forms
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from .access import require_admin
from .audit import record
from .context_processors import brand_for
from .models import Invitation, Membership

Role = Membership.Role


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)


def grantable(membership: Membership, role: str) -> bool:
    """Only owners make owners."""
    return role != Role.OWNER or membership.role == Role.OWNER


@login_required
def members(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    me = require_admin(request.user, request.tenant)
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["role"]
        if not grantable(me, role):
            raise PermissionDenied("Only owners may invite owners.")
        invitation = Invitation.objects.create(
            tenant=request.tenant,
            email=form.cleaned_data["email"],
            role=role,
            token=secrets.token_urlsafe(32),
            invited_by=request.user,
        )
        link = request.build_absolute_uri(reverse("accept-invitation", args=[invitation.token]))
        brand = brand_for(request.tenant)["name"]
        send_mail(
            f"You are invited to {request.tenant.name} on {brand}",
            f"{request.user.get_username()} invited you to join {request.tenant.name} as "
            f"{role}.\n\nAccept: {link}\n",
            None,
            [invitation.email],
        )
        record(request, request.tenant, "member.invite", invitation.email, role=role)
        return redirect("members")
    context = {
        "form": form,
        "memberships": request.tenant.memberships.select_related("user").order_by("user__username"),
        "invitations": request.tenant.invitations.filter(accepted_at=None),
        "roles": Role.choices,
    }
    return render(request, "members.html", context)


def membership_for_admin(request, pk) -> tuple[Membership, Membership]:
    target = get_object_or_404(Membership.objects.for_member(request.user), pk=pk)
    return target, require_admin(request.user, target.tenant)


def last_owner(target: Membership) -> bool:
    owners = target.tenant.memberships.filter(role=Role.OWNER)
    return target.role == Role.OWNER and owners.count() == 1


@login_required
@require_POST
def change_role(request, pk):
    target, me = membership_for_admin(request, pk)
    role = request.POST.get("role", "")
    if role not in Role.values or not grantable(me, role) or not grantable(me, target.role):
        raise PermissionDenied("Only owners may make or change owners.")
    if last_owner(target) and role != Role.OWNER:
        raise PermissionDenied("A tenant keeps at least one owner.")
    Membership.objects.filter(pk=target.pk).update(role=role)
    record(request, target.tenant, "member.role", str(target.user), role=role)
    return redirect("members")


@login_required
@require_POST
def remove_member(request, pk):
    target, me = membership_for_admin(request, pk)
    if not grantable(me, target.role) or last_owner(target):
        raise PermissionDenied("Owners are removed by owners, and a tenant keeps at least one.")
    target.delete()
    record(request, target.tenant, "member.remove", str(target.user))
    return redirect("members")


def accept_invitation(request, token):
    invitation = get_object_or_404(
        Invitation.objects.select_related("tenant"), token=token, accepted_at=None
    )
    signup = UserCreationForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST":
        if signup is not None:
            if not signup.is_valid():
                return render(request, "accept.html", {"invitation": invitation, "signup": signup})
            user = signup.save()
            user.email = invitation.email
            user.save(update_fields=["email"])
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        Membership.objects.get_or_create(
            user=request.user, tenant=invitation.tenant, defaults={"role": invitation.role}
        )
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now())
        record(
            request,
            invitation.tenant,
            "member.join",
            request.user.get_username(),
            role=invitation.role,
        )
        request.session["tenant_id"] = invitation.tenant_id
        return redirect("dashboard")
    return render(request, "accept.html", {"invitation": invitation, "signup": signup})
