"""Signing in and out (django-allauth's views, in the portal's layout): the sign-in page says
where mail goes when no mail server is set up; a user ends any one of their other sessions,
and chooses which events of each of their tenants they are mailed about."""

from allauth.account.views import EmailView, LoginView, LogoutView
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import sessions
from accounts.addresses import ensure
from tenancy.events import TYPES
from tenancy.mail import on_console
from tenancy.models import Membership


class Login(LoginView):
    template_name = "account/login.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "mail_on_console": on_console()}


login = Login.as_view()
logout = LogoutView.as_view()
allauth_email = EmailView.as_view()


@login_required
def email(request: HttpRequest) -> HttpResponse:
    """allauth's address page (change the address by confirming the new one)."""
    if isinstance(request.user, User):  # (login_required)
        ensure(request.user)
    return allauth_email(request)


@login_required
@require_POST
def end_session(request: HttpRequest, pk: int) -> HttpResponse:
    """Ends one of the user's other sessions (this one is ended by logging out)."""
    session = get_object_or_404(UserSession, pk=pk, user=request.user)
    if session.session_key == request.session.session_key:
        messages.error(request, "This is the session you are using: log out to end it.")
    else:
        sessions.end(request, session)
        messages.success(request, f"Signed out the session from {sessions.describe(session)}.")
    return redirect("usersessions_list")


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """Per tenant of theirs, the events a member is mailed about (telemetry.notices)."""
    user = request.user
    assert isinstance(user, User)  # noqa: S101 (login_required)
    memberships = list(
        Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")
    )
    if request.method == "POST":
        chosen = 0
        for membership in memberships:
            wanted = [t for t in TYPES if f"{membership.pk}:{t}" in request.POST]
            if wanted != membership.notify:
                membership.notify = wanted
                membership.save(update_fields=["notify"])
            chosen += len(wanted)
        messages.success(request, (
            f"Saved: {chosen} kinds of event mailed to {user.email}." if chosen
            else "Saved: you are mailed about no event."
        ))  # fmt: skip
        return redirect("notifications")
    context = {
        "memberships": memberships,
        "types": TYPES.items(),
        "mail_on_console": on_console(),
        "per_hour": settings.NOTICE_MAILS_PER_HOUR,
    }
    return render(request, "account/notifications.html", context)
