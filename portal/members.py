"""Tenant pages for members: list, change roles, remove, invite by email, withdraw, accept."""

from allauth.mfa.utils import is_mfa_enabled
from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.addresses import prove
from accounts.factors import second_factors
from sso.models import SingleSignOn
from tenancy import members as tenant_members
from tenancy.access import Action, can
from tenancy.audit import record
from tenancy.mail import on_console
from tenancy.middleware import SESSION_KEY
from tenancy.models import Invitation, Membership

from .access import require, visible

Role = Membership.Role


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DEVELOPER)


@login_required
def members(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    tenant = request.tenant
    require(request, Action.MANAGE, tenant, viewing=request.method != "POST")
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["role"]

        def link_for(token: str) -> str:
            return request.build_absolute_uri(reverse("accept-invitation", args=[token]))

        try:
            invitation = tenant_members.invite(
                request.principal, tenant, form.cleaned_data["email"], role, link_for
            )
        except tenant_members.MemberRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        record(request, tenant, "member.invite", invitation.email, role=role)
        if on_console():
            messages.warning(request, (
                f"No mail server is set up, so the invitation to {invitation.email} was only "
                f"printed on the platform's console. Send this link yourself: "
                f"{link_for(invitation.token)}"
            ))  # fmt: skip
        else:
            messages.success(request, f"The invitation is on its way to {invitation.email}.")
        return redirect("members")
    memberships = list(tenant.memberships.select_related("user").order_by("user__username"))
    factors = second_factors([m.user for m in memberships])
    for membership in memberships:
        membership.factors = factors.get(membership.user.pk, [])
    context = {
        "form": form,
        "memberships": memberships,
        "invitations": tenant_members.open_invitations(tenant),
        "roles": Role.choices,
        "may_own": can(request.principal, Action.OWN, tenant),
        "sso_set": SingleSignOn.objects.filter(tenant=tenant).exists(),
    }
    return render(request, "members.html", context)


@login_required
@require_POST
def require_second_factor(request):
    """An owner requires (or stops requiring) a second factor of every member; an owner
    without one sets their own up first, so that turning it on never locks them out."""
    if request.tenant is None:
        raise Http404("No tenant.")
    tenant = request.tenant
    require(request, Action.OWN, tenant)
    wanted = request.POST.get("required") == "on"
    if wanted and not is_mfa_enabled(request.user):
        messages.error(request, "Set up your own second factor first (Your account, Two-factor).")
        return redirect("members")
    if wanted != tenant.require_second_factor:
        tenant.require_second_factor = wanted
        tenant.save(update_fields=["require_second_factor"])
        record(request, tenant, "tenant.require_second_factor", tenant.slug, required=wanted)
        users = [m.user for m in tenant.memberships.select_related("user")]
        factors = second_factors(users)
        without = sorted(u.get_username() for u in users if u.pk not in factors)
        if wanted:
            messages.success(request, (
                "Every member now needs a second factor. "
                + (f"Asked to set one up at their next page: {', '.join(without)}." if without
                   else "Everyone has one already.")
            ))  # fmt: skip
        else:
            messages.success(request, "Members no longer need a second factor here.")
    return redirect("members")


def membership_for_admin(request, pk) -> Membership:
    target = visible(request, Membership.objects.select_related("tenant", "user"), pk=pk)
    require(request, Action.MANAGE, target)
    return target


@login_required
@require_POST
def change_role(request, pk):
    target = membership_for_admin(request, pk)
    role = request.POST.get("role", "")
    try:
        tenant_members.change_role(request.principal, target, role)
    except tenant_members.MemberRefused as exc:
        raise PermissionDenied(str(exc)) from exc
    record(request, target.tenant, "member.role", str(target.user), role=role)
    return redirect("members")


@login_required
@require_POST
def remove_member(request, pk):
    target = membership_for_admin(request, pk)
    try:
        tenant_members.remove(request.principal, target)
    except tenant_members.MemberRefused as exc:
        raise PermissionDenied(str(exc)) from exc
    record(request, target.tenant, "member.remove", str(target.user))
    return redirect("members")


@login_required
@require_POST
def withdraw_invitation(request, pk):
    invitation = visible(request, Invitation.objects.select_related("tenant"), pk=pk)
    require(request, Action.MANAGE, invitation)
    try:
        withdrawn = tenant_members.withdraw(request.principal, invitation)
    except tenant_members.MemberRefused as exc:
        raise PermissionDenied(str(exc)) from exc
    if withdrawn:
        record(request, invitation.tenant, "member.withdraw", invitation.email)
    return redirect("members")


def accept_invitation(request, token):
    """Only the account of the invited address may accept, before the invitation expires
    and unless it was withdrawn; a new account takes the invited address."""
    invitation = Invitation.objects.select_related("tenant").filter(token=token).first()
    if invitation is None or not invitation.is_open:
        raise Http404("This invitation does not exist, was withdrawn, was used or has expired.")
    user = request.user
    if user.is_authenticated and user.email.lower() != invitation.email.lower():
        return render(
            request, "accept.html", {"invitation": invitation, "wrong_account": True}, status=403
        )
    signup = UserCreationForm(request.POST or None) if not user.is_authenticated else None
    if request.method == "POST":
        if signup is not None:
            if not signup.is_valid():
                return render(request, "accept.html", {"invitation": invitation, "signup": signup})
            user = signup.save()
            user.email = invitation.email
            user.save(update_fields=["email"])
            prove(user, invitation.email)  # (the invitation's link was mailed there)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        # Taken once: two clicks at the same moment make one membership.
        if not Invitation.objects.filter(pk=invitation.pk, accepted_at=None).update(
            accepted_at=timezone.now()
        ):
            raise Http404("This invitation was used already.")
        Membership.objects.get_or_create(
            user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
        )
        prove(user, invitation.email)
        record(request, invitation.tenant, "member.join", user.get_username(), role=invitation.role)
        request.session[SESSION_KEY] = invitation.tenant_id
        return redirect("dashboard")
    return render(request, "accept.html", {"invitation": invitation, "signup": signup})
