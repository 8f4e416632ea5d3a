"""Members: invitations by email, roles, removal; only owners and admins manage them."""

import re

from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.addresses import proven_holder
from tenancy.models import AuditEvent, Invitation, Membership

from .conftest import client_for


def invite(client, email, role):
    return client.post(reverse("members"), {"email": email, "role": role})


def test_an_invitation_is_emailed_and_accepted_with_a_new_account(owner_client, tenant):
    assert invite(owner_client, "new@example.com", "developer").status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.com"]
    link = re.search(r"http://testserver(/invite/\S+/)", mail.outbox[0].body).group(1)

    newcomer = Client()
    assert "Join Acme" in newcomer.get(link).content.decode()
    response = newcomer.post(
        link, {"username": "newbie", "password1": "a-long-pass-123", "password2": "a-long-pass-123"}
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user__username="newbie")
    assert membership.tenant == tenant and membership.role == "developer"
    assert membership.user.email == "new@example.com"
    # The link was mailed there: the address is proven (single sign-on may link it).
    assert proven_holder("new@example.com") == membership.user
    assert newcomer.get(link).status_code == 404  # used once
    assert AuditEvent.objects.filter(action__in=["member.invite", "member.join"]).count() == 2


def test_an_existing_user_accepts_while_logged_in(owner_client, other_tenant, outsider):
    invite(owner_client, "oscar@example.com", "viewer")
    link = re.search(r"http://testserver(/invite/\S+/)", mail.outbox[0].body).group(1)
    client = client_for(Client, outsider)
    assert proven_holder("oscar@example.com") is None  # (an address typed in, until now)
    client.post(link)
    assert Membership.objects.get(user=outsider, tenant__slug="acme").role == "viewer"
    assert proven_holder("oscar@example.com") == outsider


def test_roles_change_and_members_leave_but_a_tenant_keeps_an_owner(owner_client, owner, developer):
    dev = Membership.objects.get(user=developer)
    owner_client.post(reverse("member-role", args=[dev.pk]), {"role": "admin"})
    dev.refresh_from_db()
    assert dev.role == "admin"
    me = Membership.objects.get(user=owner)
    assert (
        owner_client.post(reverse("member-role", args=[me.pk]), {"role": "viewer"}).status_code
        == 403
    )
    assert owner_client.post(reverse("member-remove", args=[me.pk])).status_code == 403
    assert owner_client.post(reverse("member-remove", args=[dev.pk])).status_code == 302
    assert not Membership.objects.filter(pk=dev.pk).exists()


def test_admins_cannot_make_owners_and_others_cannot_manage(
    client, tenant, owner, developer, viewer, outsider
):
    from .conftest import member

    admin = member(tenant, "adele", "admin")
    admin_client = client_for(Client, admin)
    assert invite(admin_client, "x@example.com", "owner").status_code == 403
    dev = Membership.objects.get(user=developer)
    assert (
        admin_client.post(reverse("member-role", args=[dev.pk]), {"role": "owner"}).status_code
        == 403
    )
    for user, expected in ((developer, 403), (viewer, 403)):
        assert client_for(Client, user).get(reverse("members")).status_code == expected
    out = client_for(Client, outsider)
    assert out.post(reverse("member-role", args=[dev.pk]), {"role": "viewer"}).status_code == 404
    assert out.post(reverse("member-remove", args=[dev.pk])).status_code == 404
    assert not Invitation.objects.exists()
    dev.refresh_from_db()
    assert dev.role == "developer"
