"""Signing in and out (django-allauth's views, in the portal's layout): the sign-in page says
where mail goes when no mail server is set up; a user ends any one of their other sessions."""

from allauth.account.views import LoginView, LogoutView
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from accounts import sessions
from tenancy.mail import on_console


class Login(LoginView):
    template_name = "account/login.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "mail_on_console": on_console()}


login = Login.as_view()
logout = LogoutView.as_view()


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
