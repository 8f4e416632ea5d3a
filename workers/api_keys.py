"""Issuing and checking API keys: `wk_<prefix>_<secret>`, stored as a SHA-256 hash."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from django.utils import timezone

from workers_portal.models import Membership, Tenant

from .models import ApiKey

KEY_PREFIX = "wk_"
# What each role may do through the API (the same rules as the portal's pages).
ROLE_SCOPES = {
    Membership.Role.OWNER: {"deploy", "invoke", "read", "admin"},
    Membership.Role.ADMIN: {"deploy", "invoke", "read", "admin"},
    Membership.Role.DEVELOPER: {"deploy", "invoke", "read"},
    Membership.Role.VIEWER: {"read"},
}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(tenant: Tenant, name: str, scopes: list[str], user=None) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored."""
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_by=user,
    )
    return key, secret


@dataclass
class Principal:
    """Who is calling the API: a signed-in member, or an API key of one tenant."""

    scopes_by_tenant: dict[int, set[str]] = field(default_factory=dict)
    key: ApiKey | None = None

    @property
    def tenant_ids(self) -> list[int]:
        return list(self.scopes_by_tenant)

    def can(self, tenant_id: int, scope: str) -> bool:
        return scope in self.scopes_by_tenant.get(tenant_id, set())


def key_from_header(header: str) -> ApiKey | None:
    token = header.removeprefix("Bearer ").strip()
    if not token.startswith(KEY_PREFIX):
        return None
    prefix = token[len(KEY_PREFIX) :].split("_", 1)[0]
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix, revoked_at=None).first()
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(token)):
        return None
    if key.tenant.status != Tenant.Status.ACTIVE:
        return None
    # Written at most once a minute per key, so busy keys do not write on every call.
    stale = key.last_used_at is None or (timezone.now() - key.last_used_at).total_seconds() > 60
    if stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def principal_for(request) -> Principal | None:
    header = request.headers.get("Authorization", "")
    if header:
        key = key_from_header(header)
        if key is None:
            return None
        return Principal({key.tenant_id: set(key.scopes)}, key)
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user, tenant__status=Tenant.Status.ACTIVE)
    return Principal({m.tenant_id: ROLE_SCOPES[m.role] for m in memberships})
