"""Ending sessions: one or all of a user's others (from their Sessions page), or any or all
of a user's (by an operator, from the admin). The session's data goes at once, so the browser holding it is
signed out at its next request; each end is in the audit log of the account's tenants."""

from allauth.usersessions.models import UserSession
from django.contrib.auth.models import User
from django.http import HttpRequest

from .receivers import audit


def describe(session: UserSession) -> str:
    return f"{session.ip or 'an unknown address'} ({session.user_agent[:80] or 'unknown browser'})"


def end(request: HttpRequest, session: UserSession, by: User | None = None) -> None:
    """Ends one session: one of the user's own others, or any, by an operator (`by`)."""
    session.end()  # (the session's data and its row)
    audit(request, session.user, "account.session_end", by=by, session=describe(session))


def end_many(
    request: HttpRequest, user: User, sessions: list[UserSession], by: User | None = None
) -> int:
    """Ends several of one account's sessions: all its others (the user, from their Sessions
    page, through allauth), or all of them (an operator, `by`)."""
    for session in sessions:
        session.end()
    audit(request, user, "account.sessions_ended", by=by, count=len(sessions))
    return len(sessions)


def end_all(request: HttpRequest, user: User, by: User) -> int:
    """An operator signs a user out everywhere (a lost laptop, a departing employee)."""
    return end_many(request, user, list(UserSession.objects.filter(user=user)), by=by)
