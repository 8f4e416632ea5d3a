"""How accounts behave (django-allauth's adapter): nobody signs up on their own (an account
comes with an invitation, or from an operator), and every mail goes out with an HTML body in
the brand of the address it was asked from (a tenant's own domain gives the tenant's)."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from allauth.usersessions.models import UserSession
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.http import HttpRequest

from tenancy.branding import brand_for
from tenancy.mail import branded
from tenancy.middleware import domain_tenant

from .sessions import end_many


def brand_of(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return brand_for(None)
    return brand_for(domain_tenant(request) or getattr(request, "tenant", None))


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False  # accounts come with invitations (tenancy.members)

    def format_email_subject(self, subject: str) -> str:
        return f"[{brand_of(self.request)['name']}] {subject}"

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        super().send_mail(template_prefix, email, {**context, "brand": brand_of(self.request)})

    def render_mail(
        self,
        template_prefix: str,
        email: str | list[str],
        context: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:
        message = super().render_mail(template_prefix, email, context, headers)
        if not isinstance(message, EmailMultiAlternatives):
            message = EmailMultiAlternatives(
                message.subject, message.body, message.from_email, message.to,
                headers=message.extra_headers,
            )  # fmt: skip
        return branded(message, context.get("brand") or brand_of(self.request))

    def add_message(
        self,
        request: HttpRequest,
        level: int,
        message_template: str | None = None,
        message_context: dict[str, Any] | None = None,
        extra_tags: str = "",
        message: str | None = None,
    ) -> None:
        # "Signed in as ..." on the next page says what the page itself shows.
        if message_template and (
            "logged_in" in message_template or "logged_out" in message_template
        ):
            return
        super().add_message(request, level, message_template, message_context, extra_tags, message)


class SessionsAdapter(DefaultUserSessionsAdapter):
    """allauth's "sign out other sessions" ends them as the platform does (accounts.sessions:
    audited in the account's tenants)."""

    def end_sessions(self, sessions: list[UserSession]) -> None:
        user = self.request.user
        if user.is_authenticated:
            end_many(self.request, user, list(sessions))
        else:
            super().end_sessions(sessions)
