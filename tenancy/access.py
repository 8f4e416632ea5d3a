"""Who may do what: one principal per request, one table of what each role may do, and one
question every door asks, `can(principal, action, obj)`.

A principal is a signed-in member (their role in each of their tenants) or an API key (its
scopes in its one tenant). The role that counts is the one in the object's tenant. A
suspended tenant may still be read, but nothing in it is written or invoked, whoever asks.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .models import Membership, Tenant


class Action(StrEnum):
    READ = "read"  # see workers, deployments, logs, invocations
    DEPLOY = "deploy"  # create workers, deploy, cancel builds, promote, delete workers
    INVOKE = "invoke"  # run a deployment's functions
    MANAGE = "manage"  # API keys, secrets, members, audit log, visibility
    OWN = "own"  # make, change and remove owners


Role = Membership.Role
# The one role-to-action table: portal pages, templates, the JSON API, log streams and the
# admin all read it.
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset({Action.READ, Action.DEPLOY, Action.INVOKE, Action.MANAGE}),
    Role.DEVELOPER: frozenset({Action.READ, Action.DEPLOY, Action.INVOKE}),
    Role.VIEWER: frozenset({Action.READ}),
}
# What an API key may be given: the same names as actions (a key never owns: owners are
# people). `manage` lets CI and the CLI set secrets, drains and members.
KEY_SCOPES = (Action.DEPLOY, Action.INVOKE, Action.READ, Action.MANAGE)
# How refusals name what was refused.
DOING = {
    Action.READ: "read this tenant's workers",
    Action.DEPLOY: "deploy or change workers",
    Action.INVOKE: "invoke workers",
    Action.MANAGE: "manage API keys, secrets, members or visibility",
    Action.OWN: "make, change or remove owners",
}
# Refused in a suspended tenant.
WRITES = frozenset({Action.DEPLOY, Action.INVOKE, Action.MANAGE, Action.OWN})


class Denied(Exception):
    """An action the principal may not take; `code` and `message` go to the caller."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Grant:
    tenant: Tenant
    actions: frozenset[Action]
    role: str = ""  # empty for an API key


@dataclass
class Principal:
    """Who is asking: a member (grants in each of their tenants) or an API key (one)."""

    grants: dict[int, Grant] = field(default_factory=dict)
    user: Any = None
    key: Any = None

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None or self.key is not None

    @property
    def tenant_ids(self) -> list[int]:
        """The tenants whose objects this principal may see exist (others are a 404)."""
        return list(self.grants)

    @property
    def tenants(self) -> list[Tenant]:
        return sorted((g.tenant for g in self.grants.values()), key=lambda t: (t.name, t.slug))

    def role_in(self, tenant_id: int) -> str:
        grant = self.grants.get(tenant_id)
        return grant.role if grant else ""

    @property
    def label(self) -> str:
        if self.key is not None:
            return f"API key {self.key.name} (wk_{self.key.prefix}_…)"
        return self.user.get_username() if self.user is not None else "anonymous"


ANONYMOUS = Principal()


# --- suspension: the one rule ---------------------------------------------------------------
# Every door asks here: `check` for a principal's actions, and `acts`/`acting` where the
# platform itself acts for a tenant (the runtime's lookups, runs, schedules, releases).
SUSPENDED = (
    "This tenant is suspended: nothing in it can be changed or invoked. "
    "Contact your platform operator."
)


def acts(tenant: Tenant) -> bool:
    """Whether anything in the tenant may be written or invoked now (it is not suspended)."""
    return tenant.status == Tenant.Status.ACTIVE


def acting(queryset, path: str = "tenant"):
    """The rows of `queryset` whose tenant acts (`path` leads from a row to its tenant)."""
    return queryset.filter(**{f"{path}__status": Tenant.Status.ACTIVE})


def tenant_id_of(obj) -> int:
    return obj.pk if isinstance(obj, Tenant) else obj.tenant_id


def check(principal: Principal, action: Action | str, obj, *, viewing: bool = False) -> None:
    """Raises Denied unless the principal may take `action` on `obj` (or a Tenant). With
    `viewing`, only whether its role allows it: the page that offers the action still shows
    in a suspended tenant (its keys, its members), with the action refused there."""
    action = Action(action)
    grant = principal.grants.get(tenant_id_of(obj))
    if grant is None:
        raise Denied("not_found", "Not found.")
    if action not in grant.actions:
        if principal.key is not None:
            raise Denied("forbidden", f"This API key may not {DOING[action]} (no {action} scope).")
        raise Denied("forbidden", f"Your role here ({grant.role}) may not {DOING[action]}.")
    if action in WRITES and not viewing and not acts(grant.tenant):
        raise Denied("tenant_suspended", SUSPENDED)


def can(principal: Principal, action: Action | str, obj, *, viewing: bool = False) -> bool:
    try:
        check(principal, action, obj, viewing=viewing)
    except Denied:
        return False
    return True


def member_principal(user) -> Principal:
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    memberships = Membership.objects.filter(user=user).select_related("tenant")
    grants = {m.tenant_id: Grant(m.tenant, ROLE_ACTIONS[m.role], m.role) for m in memberships}
    return Principal(grants, user=user)


def key_principal(key) -> Principal:
    """An API key's principal: its scopes, in its tenant only; a personal key's, never more
    than its member's role allows now (a demoted developer's key stops deploying)."""
    actions = frozenset(Action(s) for s in key.scopes if s in KEY_SCOPES)
    if key.member_id is not None:
        actions &= ROLE_ACTIONS.get(key.member_role() or "", frozenset())
    return Principal({key.tenant_id: Grant(key.tenant, actions)}, key=key)


def grantable(principal: Principal, tenant_id: int, role: str) -> bool:
    """Only those who may own make, change or remove owners."""
    grant = principal.grants.get(tenant_id)
    return role != Role.OWNER or (grant is not None and Action.OWN in grant.actions)
