"""Second factors: an authenticator app guards the sign-in (codes computed here as a phone
would, RFC 6238), recovery codes work once each, operators cannot reach the admin without a
factor, a tenant's owner can require one of every member, and API keys are not concerned."""

import html
import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from tenancy.models import AuditEvent, Membership

from .conftest import client_for, make_operator, make_user, member, totp_code
from .test_accounts import bodies

# (transactional: what allauth does once a change is committed, the mail and the audit, happens)
pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(client: Client, login: str) -> str:
    """Signs in with the password; where the answer sends the browser next."""
    answer = client.post(reverse("login"), {"login": login, "password": "pw-123456"})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return answer["Location"]


def reaches_the_portal(client: Client) -> bool:
    return client.get(reverse("dashboard")).status_code == 200


def set_up_authenticator_app(client: Client) -> tuple[str, list[str]]:
    """What a user does on Your account, Two-factor: scan the secret, type the code, keep the
    recovery codes the platform shows."""
    page = client.get(reverse("mfa_activate_totp"))
    # Changing how one signs in asks for the password again first.
    assert page.status_code == 302 and page["Location"].startswith(
        reverse("account_reauthenticate")
    )
    confirmed = client.post(page["Location"], {"password": "pw-123456"})
    assert confirmed.status_code == 302
    page = client.get(confirmed["Location"])
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    assert secret in page.content.decode(), "the secret is shown for apps that cannot scan"
    done = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert done.status_code == 302, done.content.decode()[:2000]
    codes_page = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    box = re.search(r'<textarea[^>]*id="recovery_codes"[^>]*>(.*?)</textarea>', codes_page, re.S)
    codes = html.unescape(box.group(1)).split()
    assert len(codes) == 10
    return secret, codes


def test_an_authenticator_app_guards_the_sign_in_and_recovery_codes_work_once(inbox, tenant):
    user = member(tenant, "mia", Membership.Role.DEVELOPER)
    mine = Client()
    assert sign_in(mine, "mia") == "/" and reaches_the_portal(mine)
    secret, codes = set_up_authenticator_app(mine)
    [mail] = inbox.to("mia@example.com")
    text, _ = bodies(mail)  # (if it was not them, they learn of it)
    assert mail["Subject"] == "[Functions] Authenticator App Activated"
    assert "Authenticator app activated." in text and "127.0.0.1" in text

    # A password alone no longer signs in: the next step asks for the app's code.
    thief = Client()
    assert sign_in(thief, "mia") == reverse("mfa_authenticate")
    assert not reaches_the_portal(thief)
    guess = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"
    wrong = thief.post(reverse("mfa_authenticate"), {"code": guess})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert not reaches_the_portal(thief)

    laptop = Client()
    sign_in(laptop, "mia")
    if 30 - time.time() % 30 < 3:  # (not at the edge of a 30-second window: one code for all)
        time.sleep(30 - time.time() % 30 + 0.1)
    code = totp_code(secret)
    answer = laptop.post(reverse("mfa_authenticate"), {"code": code})
    assert answer.status_code == 302 and reaches_the_portal(laptop)

    # A code seen once is spent: replayed at once from elsewhere, it is refused.
    replay = Client()
    sign_in(replay, "mia")
    refused = replay.post(reverse("mfa_authenticate"), {"code": code})
    assert refused.status_code == 200 and not reaches_the_portal(replay)

    # The phone is lost: a recovery code signs in, once.
    lost = Client()
    sign_in(lost, "mia")
    assert lost.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 302
    assert reaches_the_portal(lost)
    again = Client()
    sign_in(again, "mia")
    assert again.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 200
    assert not reaches_the_portal(again)
    assert "There are 9 out of 10" in mine.get(reverse("mfa_view_recovery_codes")).content.decode()

    audited = list(
        AuditEvent.objects.filter(tenant=tenant, target="mia").values_list("action", flat=True)
    )
    assert "account.second_factor_added" in audited
    assert audited.count("account.second_factor_failed") >= 2
    assert AuditEvent.objects.filter(
        action="account.second_factor_added", details__kind="totp", actor=user
    ).exists()


def test_an_operator_sets_up_a_second_factor_before_reaching_the_admin(tenant):
    operator = make_user("nora")
    operator.is_staff = operator.is_superuser = True
    operator.save()
    browser = Client()
    sign_in(browser, "nora")
    page = browser.get("/admin/", follow=True)
    assert page.redirect_chain[-1][0] == reverse("mfa_index")
    assert "This platform (for its operators) requires a second factor" in page.content.decode()
    assert browser.get("/operators/").status_code == 302
    # An htmx partial is sent to the same place as a whole page, not swapped into one.
    partial = browser.get("/operators/", headers={"HX-Request": "true"})
    assert partial.status_code == 204 and partial["HX-Redirect"] == reverse("mfa_index")

    set_up_authenticator_app(browser)
    assert browser.get("/admin/").status_code == 200

    # One that has it signs in with both, as the browser test does through the page.
    ready = make_operator("olga")
    other = Client()
    assert sign_in(other, "olga") == reverse("mfa_authenticate")
    assert other.post(reverse("mfa_authenticate"), {"code": totp_code(ready.totp_secret)})[
        "Location"
    ] in ("/", "/operators/")
    assert other.get("/admin/").status_code == 200


def test_an_owner_requires_a_second_factor_of_every_member(tenant, owner, other_tenant):
    from workers.api_keys import issue_key

    casual = member(tenant, "cas", Membership.Role.DEVELOPER)
    elsewhere = member(other_tenant, "eve", Membership.Role.DEVELOPER)
    owner_browser = client_for(Client, owner)
    members_page = reverse("members")
    setting = reverse("members-second-factor")

    # Only an owner changes it, and only with a factor of their own (never locked out).
    admin = member(tenant, "adm", Membership.Role.ADMIN)
    assert client_for(Client, admin).post(setting, {"required": "on"}).status_code == 403
    first = owner_browser.post(setting, {"required": "on"}, follow=True).content.decode()
    assert "Set up your own second factor first" in first
    tenant.refresh_from_db()
    assert not tenant.require_second_factor

    set_up_authenticator_app(owner_browser)
    done = owner_browser.post(setting, {"required": "on"}, follow=True).content.decode()
    assert "Every member now needs a second factor" in html.unescape(done)
    assert "adm, cas" in done
    tenant.refresh_from_db()
    assert tenant.require_second_factor
    assert AuditEvent.objects.filter(
        tenant=tenant, action="tenant.require_second_factor", details__required=True
    ).exists()
    listing = owner_browser.get(members_page).content.decode()
    assert "Authenticator app" in listing and "None yet: asked at their next page" in listing

    # A member without one is taken to set it up, whatever page they open.
    casual_browser = client_for(Client, casual)
    page = casual_browser.get(reverse("dashboard"), follow=True)
    assert page.redirect_chain[-1][0] == reverse("mfa_index")
    assert "Acme requires a second factor" in page.content.decode()
    refused = casual_browser.get("/api/workers")  # (their session, through the JSON API)
    assert (
        refused.status_code == 403 and refused.json()["error"]["code"] == "second_factor_required"
    )
    # A member of another tenant is not concerned.
    assert reaches_the_portal(client_for(Client, elsewhere))

    # The tenant's API keys are their own credential: CI keeps deploying.
    raw = issue_key(tenant, "ci", ["read"])[1]
    api = Client().get("/api/workers", headers={"Authorization": f"Bearer {raw}"})
    assert api.status_code == 200, api.content

    # Turned off, the member goes on as before.
    owner_browser.post(setting, {})
    assert reaches_the_portal(casual_browser)
