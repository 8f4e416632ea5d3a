"""`functions login`: the CLI asks for a key, a signed-in member approves it in the portal,
the CLI collects it (the device authorization flow of RFC 8628, in its plain form).

The CLI gets two things: a short code the person compares on both screens, and a poll token
only it holds (stored hashed). Nothing is created for a tenant until someone approves, and
unapproved requests are bounded per address and in all, and expire."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tenancy.access import KEY_SCOPES, ROLE_ACTIONS
from tenancy.models import Membership, Tenant

from .api_keys import issue_key
from .models import KeyRequest
from .secrets import decrypt, encrypt

LIFETIME = timedelta(minutes=10)
POLL_SECONDS = 2
PENDING_PER_ADDRESS = 5
PENDING_IN_ALL = 1000
# No vowels (no words), no look-alikes (0/O, 1/I/L).
ALPHABET = "BCDFGHJKMNPQRSTVWXZ"


class TooMany(Exception):
    """Too many requests wait for approval (from this address, or in all)."""


class NotDecidable(Exception):
    """The request is unknown, expired or decided already; the message says which."""


def hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_code() -> str:
    letters = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def start(client: str, address: str | None) -> tuple[KeyRequest, str]:
    """A new request and its poll token. Raises TooMany."""
    now = timezone.now()
    KeyRequest.objects.filter(expires__lt=now - LIFETIME).delete()  # long gone: forget them
    waiting = KeyRequest.objects.filter(status=KeyRequest.Status.PENDING, expires__gt=now)
    if waiting.filter(address=address).count() >= PENDING_PER_ADDRESS:
        raise TooMany(
            f"{PENDING_PER_ADDRESS} sign-ins from this address wait for approval already; "
            "approve or let them expire (10 minutes) first."
        )
    if waiting.count() >= PENDING_IN_ALL:
        raise TooMany("Too many sign-ins wait for approval; try again in a few minutes.")
    token = secrets.token_urlsafe(32)
    request = KeyRequest.objects.create(
        code=new_code(),
        poll_hash=hashed(token),
        client=client[:100],
        address=address,
        expires=now + LIFETIME,
    )
    return request, token


def pending(code: str) -> KeyRequest | None:
    """The request a person types or follows the link of, while it can still be decided."""
    code = code.strip().upper()
    if len(code) == 8:
        code = f"{code[:4]}-{code[4:]}"
    return KeyRequest.objects.filter(
        code=code, status=KeyRequest.Status.PENDING, expires__gt=timezone.now()
    ).first()


def scopes_for(user, tenant: Tenant) -> list[str]:
    """What a personal key of this member may be given: the key scopes their role has."""
    role = Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True)
    actions = ROLE_ACTIONS.get(role.first() or "", frozenset())
    return [scope.value for scope in KEY_SCOPES if scope in actions]


def approve(request: KeyRequest, user, tenant: Tenant, scopes: list[str]):
    """Mint the personal key and keep its secret (encrypted) for the CLI to collect once.
    Raises NotDecidable, or QuotaExceeded from the tenant's quota of keys."""
    allowed = scopes_for(user, tenant)
    scopes = [s for s in scopes if s in allowed]
    if not scopes:
        raise NotDecidable("Your role in that tenant allows no scope for a key.")
    with transaction.atomic():
        locked = KeyRequest.objects.select_for_update().filter(pk=request.pk).first()
        if locked is None or locked.status != KeyRequest.Status.PENDING:
            raise NotDecidable("This sign-in was decided already.")
        if locked.expires <= timezone.now():
            raise NotDecidable("This sign-in expired: run `functions login` again.")
        key, secret = issue_key(tenant, f"CLI: {locked.client}"[:100], scopes, user, member=user)
        locked.status = KeyRequest.Status.APPROVED
        locked.decided_by = user
        locked.key = key
        locked.secret_sealed = encrypt(secret)
        locked.save(update_fields=["status", "decided_by", "key", "secret_sealed"])
    return key


def deny(request: KeyRequest, user) -> None:
    KeyRequest.objects.filter(pk=request.pk, status=KeyRequest.Status.PENDING).update(
        status=KeyRequest.Status.DENIED, decided_by=user
    )


def collect(token: str) -> tuple[str, KeyRequest | None, str | None]:
    """(status, request, secret) for the CLI's poll. The secret comes once: collecting wipes
    it. Unknown tokens give ("unknown", None, None)."""
    with transaction.atomic():
        found = (
            KeyRequest.objects.select_for_update(of=("self",))
            .select_related("key__tenant")
            .filter(poll_hash=hashed(token))
            .first()
        )
        if found is None:
            return "unknown", None, None
        if found.status == KeyRequest.Status.APPROVED:
            secret = decrypt(found.secret_sealed)
            found.status = KeyRequest.Status.COLLECTED
            found.secret_sealed = ""
            found.save(update_fields=["status", "secret_sealed"])
            return "approved", found, secret
        if found.status == KeyRequest.Status.PENDING and found.expires <= timezone.now():
            return "expired", found, None
        return found.status, found, None
