"""Issuing and checking API keys: `wk_<prefix>_<secret>`, stored as a SHA-256 hash."""

import hashlib
import hmac
import secrets

from django.utils import timezone

from tenancy.models import Tenant
from tenancy.quotas import check_room

from .models import ApiKey

KEY_PREFIX = "wk_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    tenant: Tenant, name: str, scopes: list[str], user=None, member=None
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored; with `member`, a
    personal key that acts for that member. QuotaExceeded when the tenant holds its quota
    of keys."""
    check_room(tenant, "max_api_keys")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_by=user,
        member=member,
    )
    return key, secret


def key_from_header(header: str) -> ApiKey | None:
    """The active key the header names, if its secret matches. A suspended tenant's key
    still authenticates (it may read); access.check refuses its writes, saying why."""
    token = header.removeprefix("Bearer ").strip()
    if not token.startswith(KEY_PREFIX):
        return None
    prefix = token[len(KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix, revoked_at=None).first()
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(token)):
        return None
    if key.member_id is not None and key.member_role() is None:
        return None  # a personal key of someone who left the tenant
    # Written at most once a minute per key, so busy keys do not write on every call.
    stale = key.last_used_at is None or (timezone.now() - key.last_used_at).total_seconds() > 60
    if stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key
