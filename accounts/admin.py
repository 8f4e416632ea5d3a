"""Operators end a user's sessions from the admin: on the user (every session) or on the
sessions list (the chosen ones); the user's tenants' audit logs say so."""

from __future__ import annotations

from typing import cast

from allauth.usersessions.admin import UserSessionAdmin
from allauth.usersessions.models import UserSession
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from . import sessions


@admin.action(description="Sign out of every session")
def sign_out_everywhere(
    modeladmin: admin.ModelAdmin[User], request: HttpRequest, users: QuerySet[User]
) -> None:
    operator = cast(User, request.user)
    ended = sum(sessions.end_all(request, user, operator) for user in users)
    names = ", ".join(u.get_username() for u in users)
    modeladmin.message_user(request, f"Ended {ended} session(s) of {names}.", messages.SUCCESS)


@admin.action(description="End the selected sessions")
def end_sessions(
    modeladmin: admin.ModelAdmin[UserSession], request: HttpRequest, chosen: QuerySet[UserSession]
) -> None:
    count = 0
    for session in chosen.select_related("user"):
        sessions.end(request, session, by=cast(User, request.user))
        count += 1
    modeladmin.message_user(request, f"Ended {count} session(s).", messages.SUCCESS)


class Users(UserAdmin):  # type: ignore[type-arg]
    actions = [sign_out_everywhere]


class Sessions(UserSessionAdmin):
    actions = [end_sessions]


admin.site.unregister(User)
admin.site.register(User, Users)
admin.site.unregister(UserSession)
admin.site.register(UserSession, Sessions)
