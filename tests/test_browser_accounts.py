"""Second factors in a real browser (Chromium): an authenticator app set up from the page's
secret and asked for at the next sign-in (codes computed here, as a phone would), and a
passkey (Chromium's virtual authenticator) that signs in alone and serves as a second factor."""

import contextlib
import os

import pytest

from tenancy.models import AuditEvent, Membership

from .conftest import member, totp_code
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
        page.fill("input[name=code]", totp_code(secret))
        page.click("main button[type=submit]")
        # Recovery codes are shown at once, to be kept somewhere else.
        page.wait_for_url("**/accounts/2fa/recovery-codes/**")
        assert len(page.input_value("#recovery_codes").split()) == 10

        log_out(page, base)
        log_in(page, base, "tia")
        page.wait_for_url("**/accounts/2fa/authenticate/")
        page.fill("input[name=code]", totp_code(secret))
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
