"""Accounts people can trust: mail through a real SMTP server (started here), in text and
branded HTML; a forgotten password reset by a single-use link, which ends the account's other
sessions; a password change that keeps this session and ends the others; sign-in failures
throttled per account with a clear message while others sign in; every one audited."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tenancy.models import AuditEvent

from .conftest import make_user

pytestmark = pytest.mark.django_db


def bodies(mail) -> tuple[str, str]:
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    return text, html


def signed_in(client: Client) -> bool:
    return client.get(reverse("dashboard")).status_code == 200


def sign_in(client: Client, login: str, password: str):
    return client.post(reverse("login"), {"login": login, "password": password})


def test_a_forgotten_password_is_reset_by_a_single_use_link_in_the_mail(inbox, tenant):
    from tenancy.models import Membership

    user = make_user("rita")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.DEVELOPER)
    elsewhere = Client()
    assert sign_in(elsewhere, "rita", "pw-123456").status_code == 302 and signed_in(elsewhere)

    browser = Client()
    page = browser.get(reverse("account_reset_password"))
    assert page.status_code == 200
    asked = browser.post(reverse("account_reset_password"), {"email": "RITA@example.com"})
    assert asked.status_code == 302
    [mail] = inbox.to("rita@example.com")
    assert mail["Subject"] == "[Functions] Password Reset Email"
    text, html = bodies(mail)
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", text).group(1)
    assert "your username is rita" in text
    assert link in html and "border-top:4px solid #2563eb" in html  # the brand's color

    form = browser.get(link, follow=True)
    assert form.status_code == 200 and 'name="password1"' in form.content.decode()
    done = browser.post(form.redirect_chain[-1][0] if form.redirect_chain else link,
                        {"password1": "a-New-pw-2026", "password2": "a-New-pw-2026"})  # fmt: skip
    assert done.status_code == 302, done.content.decode()[:2000]

    assert sign_in(Client(), "rita", "pw-123456").status_code == 200  # refused: the old one
    assert sign_in(Client(), "rita@example.com", "a-New-pw-2026").status_code == 302
    assert not signed_in(elsewhere)  # the reset ended the other session
    again = Client().get(link, follow=True)
    assert "possibly because it has already been used" in again.content.decode()
    # The account is told its password was reset; the tenant's audit log has it.
    assert any("Password Reset" in m["Subject"] for m in inbox.to("rita@example.com")[1:])
    actions = list(
        AuditEvent.objects.filter(tenant=tenant, target="rita").values_list("action", flat=True)
    )
    assert "account.password_reset" in actions and "account.sign_in" in actions


def test_a_password_change_keeps_this_session_and_ends_the_others(inbox, owner, tenant):
    here, there = Client(), Client()
    for client in (here, there):
        assert sign_in(client, owner.username, "pw-123456").status_code == 302
    changed = here.post(reverse("account_change_password"), {
        "oldpassword": "pw-123456", "password1": "another-pw-2026", "password2": "another-pw-2026",
    })  # fmt: skip
    assert changed.status_code == 302
    assert signed_in(here) and not signed_in(there)
    wrong_old = here.post(reverse("account_change_password"), {
        "oldpassword": "nope", "password1": "x-pw-2026-abc", "password2": "x-pw-2026-abc",
    })  # fmt: skip
    assert wrong_old.status_code == 200 and "current password" in wrong_old.content.decode().lower()
    common = here.post(reverse("account_change_password"), {
        "oldpassword": "another-pw-2026", "password1": "password", "password2": "password",
    })  # fmt: skip
    assert "too common" in common.content.decode()  # Django's validators
    assert AuditEvent.objects.filter(tenant=tenant, action="account.password_change").count() == 1
    [notice] = [m for m in inbox.to(owner.email) if "Password Change" in m["Subject"]]
    text, html = bodies(notice)
    assert "Your password has been changed." in text and "IP address: 127.0.0.1" in text
    assert "Your password has been changed." in html


def test_guessing_a_password_is_throttled_per_account_and_others_still_sign_in(inbox, tenant):
    from tenancy.models import Membership

    victim = make_user("vic")
    Membership.objects.create(user=victim, tenant=tenant, role=Membership.Role.OWNER)
    make_user("bystander")
    attacker = Client()
    for _ in range(5):
        refused = sign_in(attacker, "vic", "guess")
        assert refused.status_code == 200
        assert "not correct" in refused.content.decode()
    blocked = sign_in(attacker, "vic", "pw-123456")  # even the right one, for a while
    assert "Too many failed login attempts. Try again later." in blocked.content.decode()
    assert not signed_in(attacker)
    # Another account signs in from the same address meanwhile.
    assert sign_in(Client(), "bystander", "pw-123456").status_code == 302
    failures = AuditEvent.objects.filter(tenant=tenant, action="account.sign_in_failed")
    assert failures.count() == 5 and failures.first().ip == "127.0.0.1"
    assert get_user_model().objects.get(username="vic").check_password("pw-123456")


def test_invitations_arrive_as_branded_mail_or_the_inviter_gets_the_link(
    inbox, owner_client, tenant, settings
):
    tenant.brand_name, tenant.brand_color = "Acme Cloud", "#ff6600"
    tenant.save()
    sent = owner_client.post(
        reverse("members"), {"email": "new@example.com", "role": "developer"}, follow=True
    )
    assert "The invitation is on its way to new@example.com" in sent.content.decode()
    [mail] = inbox.to("new@example.com")
    text, html = bodies(mail)
    assert mail["Subject"] == "You are invited to Acme on Acme Cloud"
    link = re.search(r"http://testserver(/invite/\S+/)", text).group(1)
    assert link in html and "#ff6600" in html and "Acme Cloud" in html

    # No mail server (`make run`): the page says so and gives the inviter the link to send.
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    shown = owner_client.post(
        reverse("members"), {"email": "two@example.com", "role": "viewer"}, follow=True
    )
    page = shown.content.decode()
    assert "No mail server is set up" in page and "Send this link yourself" in page
    assert re.search(r"/invite/[\w-]+/", page.split("Send this link yourself")[1])
    assert "printed on its console" in Client().get(reverse("login")).content.decode()


def test_a_user_sees_their_sessions_and_signs_out_the_others(inbox, owner, tenant):
    laptop = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    phone = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Safari/604.1",
                   REMOTE_ADDR="10.1.2.3")  # fmt: skip
    for client in (laptop, phone):
        assert sign_in(client, owner.username, "pw-123456").status_code == 302
    page = laptop.get(reverse("usersessions_list")).content.decode()
    assert "10.1.2.3" in page and "127.0.0.1" in page and "Password" in page
    ended = laptop.post(reverse("usersessions_list"))
    assert ended.status_code == 302
    assert signed_in(laptop) and not signed_in(phone)
    assert "10.1.2.3" not in laptop.get(reverse("usersessions_list")).content.decode()
    event = AuditEvent.objects.get(tenant=tenant, action="account.sessions_ended")
    assert event.details["count"] == 1 and event.actor_label == owner.username
    # Not signed in: the page is behind the sign-in.
    assert Client().get(reverse("usersessions_list")).status_code == 302


def test_a_user_ends_one_other_session_and_an_operator_ends_them_all(inbox, owner, tenant):
    from allauth.usersessions.models import UserSession

    from .conftest import make_operator

    laptop = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    phone = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Safari/604.1", REMOTE_ADDR="10.1.2.3")
    tablet = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPad) Safari/604.1", REMOTE_ADDR="10.9.9.9")
    for client in (laptop, phone, tablet):
        assert sign_in(client, owner.username, "pw-123456").status_code == 302
    phone_session = UserSession.objects.get(user=owner, ip="10.1.2.3")
    this_one = UserSession.objects.get(user=owner, ip="127.0.0.1")

    ended = laptop.post(reverse("end-session", args=[phone_session.pk]), follow=True)
    assert "Signed out the session from 10.1.2.3" in ended.content.decode()
    assert signed_in(laptop) and signed_in(tablet) and not signed_in(phone)
    assert AuditEvent.objects.filter(
        tenant=tenant, action="account.session_end", details__session__startswith="10.1.2.3"
    ).exists()
    # This session is ended by logging out; someone else's cannot be named at all.
    kept = laptop.post(reverse("end-session", args=[this_one.pk]), follow=True)
    assert "log out to end it" in kept.content.decode() and signed_in(laptop)
    stranger = Client()
    sign_in(stranger, make_user("sam").username, "pw-123456")
    tablet_session = UserSession.objects.get(user=owner, ip="10.9.9.9")
    assert stranger.post(reverse("end-session", args=[tablet_session.pk])).status_code == 404
    assert signed_in(tablet)

    # An operator signs the account out everywhere (a stolen laptop), from the admin.
    operator = Client()
    operator.force_login(make_operator("op"))
    answer = operator.post(
        "/admin/auth/user/",
        {"action": "sign_out_everywhere", "_selected_action": [owner.pk]},
        follow=True,
    )
    assert f"Ended 2 session(s) of {owner.username}." in answer.content.decode()
    assert not signed_in(laptop) and not signed_in(tablet)
    event = AuditEvent.objects.get(tenant=tenant, action="account.sessions_ended")
    assert event.actor_label == "op" and event.target == owner.username


def test_a_sign_in_from_a_browser_never_seen_is_told_by_mail(inbox, owner, tenant):
    firefox = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    sign_in(Client(HTTP_USER_AGENT=firefox), owner.username, "pw-123456")
    sign_in(Client(HTTP_USER_AGENT=firefox), owner.username, "pw-123456")
    assert inbox.to(owner.email) == [], "the first browser, and the same again, are not news"

    stranger = Client(HTTP_USER_AGENT="curl/8.0 (evil)", REMOTE_ADDR="203.0.113.7")
    assert sign_in(stranger, owner.username, "pw-123456").status_code == 302
    [mail] = inbox.to(owner.email)
    assert mail["Subject"] == "[Functions] New sign-in from a browser not seen before"
    text, html = bodies(mail)
    assert "203.0.113.7" in text and "curl/8.0 (evil)" in text
    assert "http://testserver/accounts/sessions/" in text and "Functions" in html


def test_a_changed_address_counts_once_confirmed_from_the_mail_and_the_old_one_is_told(
    inbox, tenant
):
    from allauth.account.models import EmailAddress

    from accounts.addresses import prove
    from tenancy.models import Membership

    user = make_user("cleo")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.DEVELOPER)
    prove(user, user.email)  # (as accepting the invitation mailed there does)
    browser = Client()
    sign_in(browser, "cleo", "pw-123456")
    page = browser.get(reverse("account_email")).content.decode()
    assert "cleo@example.com" in page
    asked = browser.post(reverse("account_email"), {"action_add": "", "email": "cleo@new.test"})
    assert asked.status_code == 302, asked.content.decode()[:2000]
    [mail] = inbox.to("cleo@new.test")
    text, html = bodies(mail)
    link = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", text).group(1)
    assert link in html
    # Until it is confirmed, the account keeps its address (a typo locks nobody out).
    user.refresh_from_db()
    assert user.email == "cleo@example.com"
    assert "cleo@new.test" in browser.get(reverse("account_email")).content.decode()
    # Opening the link shows what would be confirmed; confirming takes a click (a POST).
    shown = browser.get(link)
    assert shown.status_code == 200 and "cleo@new.test" in shown.content.decode()
    user.refresh_from_db()
    assert user.email == "cleo@example.com"
    assert browser.post(link).status_code == 302
    user.refresh_from_db()
    assert user.email == "cleo@new.test"
    assert EmailAddress.objects.get(user=user, email="cleo@new.test").verified
    assert not EmailAddress.objects.filter(user=user, email="cleo@example.com").exists()
    # The old address is told, and the tenant's audit log has the change.
    assert any("Email Changed" in m["Subject"] for m in inbox.to("cleo@example.com"))
    event = AuditEvent.objects.get(tenant=tenant, action="account.email_changed")
    assert event.details["was"] == "cleo@example.com" and event.details["email"] == "cleo@new.test"
    # The address now signs in, and a used link confirms nothing again.
    assert sign_in(Client(), "cleo@new.test", "pw-123456").status_code == 302
