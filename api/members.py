"""Members and invitations over the API (what the portal's members page does): listed,
invited by mail, roles changed, removed, invitations withdrawn; `manage` scope, audited.
Owners are made by owners (people, so never by a key), and a tenant keeps one."""

from datetime import datetime

from django.http import HttpResponse
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status

from tenancy import members as tenant_members
from tenancy.access import Action
from tenancy.audit import record
from tenancy.models import LABEL_PATTERN, Invitation, Membership

from .errors import ApiError, require
from .schemas import SPACE, ErrorOut, Strict
from .workers import tenant_for

router = Router(tags=["members"])
Role = Membership.Role
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
RoleName = Field(
    description="owner, admin, developer or viewer.", pattern="^(owner|admin|developer|viewer)$"
)


class MemberOut(Schema):
    id: int
    username: str
    email: str
    role: str
    since: datetime


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    expiresAt: datetime | None
    invitedBy: str | None


class MembersOut(Schema):
    members: list[MemberOut]
    invitations: list[InvitationOut] = Field(
        description="Open ones: not accepted, withdrawn or expired."
    )


# Something@something.something, without spaces of any engine's kind (see SPACE).
EMAIL = rf"^[^@\x00{SPACE}]+@[^@\x00{SPACE}]+\.[^@\x00{SPACE}]+$"


class InviteIn(Strict):
    email: str = Field(max_length=254, pattern=EMAIL)
    role: str = RoleName
    tenant: str | None = Field(None, pattern=LABEL_PATTERN)


class RoleIn(Strict):
    role: str = RoleName


def member_json(m: Membership) -> dict:
    return {"id": m.pk, "username": m.user.get_username(), "email": m.user.email,
            "role": m.role, "since": m.created}  # fmt: skip


def invitation_json(i: Invitation) -> dict:
    return {"id": i.pk, "email": i.email, "role": i.role, "expiresAt": i.expires_at,
            "invitedBy": i.invited_by.get_username() if i.invited_by else None}  # fmt: skip


def membership_for(request, pk: int) -> Membership:
    found = Membership.objects.visible_to(request.principal).select_related("tenant", "user")
    target = found.filter(pk=pk).first()
    if target is None:
        raise ApiError(404, "not_found", "No such member.")
    require(request, Action.MANAGE, target)
    return target


def refused(exc: tenant_members.MemberRefused) -> ApiError:
    return ApiError(403, "forbidden", str(exc))


@router.get("/members", response={200: MembersOut, frozenset({400, 401, 403, 404}): ErrorOut},
            summary="The tenant's members and open invitations")  # fmt: skip
def list_members(request, tenant: str = Query(None, pattern=LABEL_PATTERN, max_length=50)):
    chosen = tenant_for(request, tenant, Action.MANAGE, viewing=True)
    members = chosen.memberships.select_related("user").order_by("user__username")
    invitations = tenant_members.open_invitations(chosen).select_related("invited_by")
    return {"members": [member_json(m) for m in members],
            "invitations": [invitation_json(i) for i in invitations]}  # fmt: skip


@router.post("/invitations", response={201: InvitationOut, frozenset({400, 401, 403, 404}): ErrorOut},
             summary="Invite someone by mail to join with a role")  # fmt: skip
def invite(request, body: InviteIn):
    tenant = tenant_for(request, body.tenant, Action.MANAGE)

    def link_for(token: str) -> str:
        return request.build_absolute_uri(reverse("accept-invitation", args=[token]))

    try:
        invitation = tenant_members.invite(
            request.principal, tenant, body.email, body.role, link_for
        )
    except tenant_members.MemberRefused as exc:
        raise refused(exc) from exc
    record(request, tenant, "member.invite", invitation.email, role=body.role)
    return Status(201, invitation_json(invitation))


@router.delete("/invitations/{int:id}", response={204: None, **ERRORS},
               summary="Withdraw an open invitation")  # fmt: skip
def withdraw(request, id: int):
    found = Invitation.objects.visible_to(request.principal).select_related("tenant")
    invitation = found.filter(pk=id).first()
    if invitation is None:
        raise ApiError(404, "not_found", "No such invitation.")
    require(request, Action.MANAGE, invitation)
    try:
        withdrawn = tenant_members.withdraw(request.principal, invitation)
    except tenant_members.MemberRefused as exc:
        raise refused(exc) from exc
    if not withdrawn:
        raise ApiError(404, "not_found", "That invitation was used or withdrawn already.")
    record(request, invitation.tenant, "member.withdraw", invitation.email)
    return HttpResponse(status=204)


@router.patch("/members/{int:id}", response={200: MemberOut, frozenset({400, 401, 403, 404}): ErrorOut},
              summary="Change a member's role")  # fmt: skip
def change_role(request, id: int, body: RoleIn):
    target = membership_for(request, id)
    try:
        tenant_members.change_role(request.principal, target, body.role)
    except tenant_members.MemberRefused as exc:
        raise refused(exc) from exc
    record(request, target.tenant, "member.role", str(target.user), role=body.role)
    target.refresh_from_db()
    return member_json(target)


@router.delete("/members/{int:id}", response={204: None, **ERRORS}, summary="Remove a member")
def remove(request, id: int):
    target = membership_for(request, id)
    try:
        tenant_members.remove(request.principal, target)
    except tenant_members.MemberRefused as exc:
        raise refused(exc) from exc
    record(request, target.tenant, "member.remove", str(target.user))
    return HttpResponse(status=204)
