"""Invocation secrets of a private worker (the Vercel back end's door besides API keys):
made and revoked by the worker's owners, at most MAX_ACTIVE valid at once (a rotation: make
the new one, move the callers, revoke the old)."""

import secrets

from django.utils import timezone

from .api_keys import hash_secret as digest
from .models import InvocationSecret, Worker

PREFIX = "wis_"
MAX_ACTIVE = 3


class TooMany(ValueError):
    pass


def issue(worker: Worker, by: str) -> tuple[InvocationSecret, str]:
    """A new secret and its value, which is shown once and never stored."""
    if active(worker).count() >= MAX_ACTIVE:
        raise TooMany(f"A worker has at most {MAX_ACTIVE} valid invocation secrets: revoke one "
                      "its callers no longer use first.")  # fmt: skip
    value = PREFIX + secrets.token_urlsafe(32)
    made = InvocationSecret.objects.create(
        worker=worker, prefix=value[: len(PREFIX) + 6], digest=digest(value), created_by=by
    )
    return made, value


def active(worker: Worker):
    return worker.invocation_secrets.filter(revoked_at=None)


def revoke(secret: InvocationSecret) -> bool:
    return bool(
        InvocationSecret.objects.filter(pk=secret.pk, revoked_at=None).update(
            revoked_at=timezone.now()
        )
    )
