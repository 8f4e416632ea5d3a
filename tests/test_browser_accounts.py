"""Second factors in a real browser (Chromium): an authenticator app set up from the page's
secret and asked for at the next sign-in (codes computed here, as a phone would), and a
passkey (Chromium's virtual authenticator) that signs in alone and serves as a second factor."""

import contextlib
import os

import pytest

from tenancy.models import AuditEvent, Membership

from .conftest import member, totp_code_to_type
from .test_browser import ARGS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@contextlib.contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("BROWSER_PATH", "/usr/bin/chromium"), args=ARGS
        )
        try:
            yield browser.new_context().new_page()
        finally:
            browser.close()


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", "pw-123456")
    page.click("main form[action='/login/'] button[type=submit]")


def log_out(page, base: str) -> None:
    page.click("header form[action='/logout/'] button")
    page.wait_for_url(f"{base}/login/**")


def confirm_password(page) -> None:
    """Changing how one signs in asks for the password again first."""
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.fill("input[name=password]", "pw-123456")
    page.click("main button[type=submit]")


def test_an_authenticator_app_is_set_up_from_the_page_and_asked_for_at_sign_in(live_server, tenant):
    member(tenant, "tia", Membership.Role.DEVELOPER)
    base = live_server.url
    with browser_page() as page:
        log_in(page, base, "tia")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/accounts/2fa/")
        page.click("a[href='/accounts/2fa/totp/activate/']")
        confirm_password(page)
        page.wait_for_url("**/accounts/2fa/totp/activate/")
        assert page.locator("main img[src^='data:image/svg+xml']").is_visible()  # the QR code
        secret = page.input_value("#authenticator_secret")
        page.fill("input[name=code]", totp_code_to_type(secret))
        page.click("main button[type=submit]")
        # Recovery codes are shown at once, to be kept somewhere else.
        page.wait_for_url("**/accounts/2fa/recovery-codes/**")
        assert len(page.input_value("#recovery_codes").split()) == 10

        log_out(page, base)
        log_in(page, base, "tia")
        page.wait_for_url("**/accounts/2fa/authenticate/")
        page.fill("input[name=code]", totp_code_to_type(secret))
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/")
        assert "tia" in page.locator("header").inner_text()


def test_a_passkey_signs_in_alone_and_as_a_second_factor(live_server, tenant):
    member(tenant, "pia", Membership.Role.DEVELOPER)
    # A passkey belongs to a name, not an address: the page is opened at localhost.
    base = live_server.url.replace("127.0.0.1", "localhost")
    with browser_page() as page:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True,
        }})  # fmt: skip
        log_in(page, base, "pia")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/accounts/2fa/webauthn/add/")
        confirm_password(page)
        page.wait_for_url("**/accounts/2fa/webauthn/add/**")
        page.fill("input[name=name]", "Laptop")
        page.check("input[name=passwordless]")
        page.click("#mfa_webauthn_add")
        page.wait_for_url(lambda url: "/webauthn/add/" not in url)
        log_out(page, base)

        # Alone: no name, no password.
        page.click("#passkey_login")
        page.wait_for_url(f"{base}/")
        assert "pia" in page.locator("header").inner_text()
        log_out(page, base)

        # As a second factor after the password.
        log_in(page, base, "pia")
        page.wait_for_url("**/accounts/2fa/authenticate/")
        page.click("main button:has-text('security key'), main button:has-text('passkey')")
        page.wait_for_url(f"{base}/")

    audited = AuditEvent.objects.filter(tenant=tenant, target="pia")
    assert audited.filter(action="account.second_factor_added", details__kind="webauthn").exists()
    assert audited.filter(action="account.sign_in").count() == 3


def test_single_sign_on_is_set_up_by_the_owner_and_signs_a_new_member_in(
    live_server, tenant, identity_provider, settings
):
    """The whole redirect flow through a real provider: the owner sets it up on the page,
    a newcomer gives their work address, signs in at the provider, and lands in the tenant."""
    from workers.models import Domain

    settings.SSO_ALLOW_PRIVATE_ISSUERS = settings.SSO_ALLOW_HTTP = True
    Domain.objects.create(tenant=tenant, hostname="acme.test", token="t" * 32,
                          status=Domain.Status.VERIFIED)  # fmt: skip
    member(tenant, "olga", Membership.Role.OWNER)
    base = live_server.url
    with browser_page() as page:
        log_in(page, base, "olga")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/members/")
        page.click("a[href='/single-sign-on/']")
        assert f"{base}/accounts/oidc/acme/login/callback/" in page.locator("main").inner_text()
        page.fill("input[name=issuer]", identity_provider.issuer)
        page.fill("input[name=client_id]", identity_provider.client_id)
        page.fill("input[name=client_secret]", identity_provider.client_secret)
        page.check("text=acme.test")
        page.select_option("select[name=role]", "developer")
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{base}/single-sign-on/")
        assert "can sign in with it now" in page.locator("main").inner_text()
        log_out(page, base)

        page.click("#sso_login")
        page.fill("input[name=email]", "alice@acme.test")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{identity_provider.issuer.removesuffix('/o')}/login/**")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-pass-1")
        page.click("text=Sign in to Acme")
        page.wait_for_url(f"{base}/")
        assert "alice" in page.locator("header").inner_text()
        assert "Acme" in page.locator("header").inner_text()
    membership = Membership.objects.get(user__email="alice@acme.test")
    assert membership.tenant == tenant and membership.role == "developer"
    assert AuditEvent.objects.filter(action="account.single_sign_on", tenant=tenant).exists()
