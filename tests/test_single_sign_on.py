"""Single sign-on per tenant, against a real OpenID Connect provider (tests/idp/, another
process): an owner sets it up in the portal; people are routed to it by their address, get
an account and a membership just in time, or their account with that address is linked;
the provider speaks only for the tenant's verified domains and addresses it vouches for; an
owner can require it, and then a session signed in otherwise acts nowhere in the tenant,
in the portal as in the API, while API keys and the CLI's approval go on working."""

from urllib.parse import urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from accounts.addresses import prove
from sso.models import SingleSignOn
from tenancy.models import AuditEvent, Membership, Tenant
from workers.api_keys import issue_key
from workers.models import Domain

from .conftest import client_for, make_user, member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def providers_on_this_machine(settings):
    settings.SSO_ALLOW_PRIVATE_ISSUERS = True  # the provider listens on 127.0.0.1
    settings.SSO_ALLOW_HTTP = True


def verified(tenant: Tenant, hostname: str) -> Domain:
    # (verifying a name by its DNS record is tested in test_domains)
    return Domain.objects.create(tenant=tenant, hostname=hostname, token="t" * 32,
                                 status=Domain.Status.VERIFIED)  # fmt: skip


@pytest.fixture
def acme_sso(tenant, owner, identity_provider):
    """Acme's owner has set up the provider for acme.test, new members as viewers."""
    domain = verified(tenant, "acme.test")
    answer = client_for(Client, owner).post("/single-sign-on/", {
        "issuer": identity_provider.issuer, "client_id": identity_provider.client_id,
        "client_secret": identity_provider.client_secret, "domains": [domain.pk],
        "role": "viewer",
    })  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return SingleSignOn.objects.get(tenant=tenant)


def sign_in(client: Client, provider, username: str, email: str = "", start: str = ""):
    """Through the whole redirect flow: the address routes to the provider, the person signs
    in there, the browser comes back with a code that the platform exchanges. The last
    answer of the platform."""
    if start:
        going = client.post(start)
    else:
        going = client.post("/accounts/sso/", {"email": email or f"{username}@acme.test"})
    assert going.status_code == 302, going.content.decode()[:2000]
    assert going["Location"].startswith(provider.issuer)
    back = urlsplit(provider.sign_in(going["Location"], username))
    assert back.path == "/accounts/oidc/acme/login/callback/"
    return client.get(f"{back.path}?{back.query}")


def test_a_new_person_signs_in_and_becomes_a_member_just_in_time(
    tenant, acme_sso, identity_provider
):
    audit = AuditEvent.objects.get(action="tenant.single_sign_on")
    assert audit.details["domains"] == ["acme.test"]
    # The login page offers it; the settings page shows the redirect URI to register.
    assert "Sign in with single sign-on" in Client().get("/login/").content.decode()
    browser = Client()
    done = sign_in(browser, identity_provider, "alice")
    assert done.status_code == 302 and done["Location"] == "/"
    alice = User.objects.get(email="alice@acme.test")
    assert not alice.has_usable_password()
    assert Membership.objects.get(user=alice, tenant=tenant).role == "viewer"
    page = browser.get("/").content.decode()
    assert "Acme" in page and "alice" in page
    event = AuditEvent.objects.get(action="account.single_sign_on")
    assert event.tenant == tenant and event.details["email"] == "alice@acme.test"
    # Next time, the same account (the provider's subject is linked to it).
    again = Client()
    sign_in(again, identity_provider, "alice")
    assert User.objects.filter(email="alice@acme.test").count() == 1
    assert SocialAccount.objects.get(user=alice).provider == "acme"


def test_the_account_that_proved_the_address_is_linked_and_told(
    tenant, other_tenant, acme_sso, identity_provider
):
    dave = User.objects.create_user("dave", "Dave@acme.test", "pw-123456")
    Membership.objects.create(user=dave, tenant=other_tenant, role="owner")
    # Anyone may type an address: an account that has not confirmed it is not linked.
    refused = sign_in(Client(), identity_provider, "dave")
    assert refused.status_code == 403
    assert (
        "An account here uses dave@acme.test but has not confirmed it" in refused.content.decode()
    )
    assert (
        not SocialAccount.objects.exists()
        and not User.objects.exclude(pk=dave.pk).filter(email__iexact="dave@acme.test").exists()
    )
    prove(dave, "Dave@acme.test")  # (as following the confirmation mail does)
    browser = Client()
    done = sign_in(browser, identity_provider, "dave")
    assert done.status_code == 302
    assert User.objects.filter(email__iexact="dave@acme.test").count() == 1
    assert SocialAccount.objects.get(provider="acme").user == dave
    assert set(dave.memberships.values_list("tenant__slug", "role")) == {
        ("globex", "owner"),
        ("acme", "viewer"),
    }
    assert dave.has_usable_password()  # (their password still signs them in)
    told = [m for m in mail.outbox if "dave@acme.test".lower() in m.to[0].lower()]
    assert told and "connected" in told[-1].subject.lower()


def test_the_provider_speaks_only_for_the_tenants_verified_addresses(
    tenant, acme_sso, identity_provider
):
    start = "/accounts/oidc/acme/login/"
    # An address at another domain, even one the provider says it verified.
    refused = sign_in(Client(), identity_provider, "bob", start=start)
    assert refused.status_code == 403
    assert "Acme signs in addresses at acme.test through its provider; bob@elsewhere.test is " \
           "not one of them." in refused.content.decode()  # fmt: skip
    # An address at the domain that the provider does not vouch for.
    unverified = sign_in(Client(), identity_provider, "carol", start=start)
    assert unverified.status_code == 403
    assert "did not give an email address it has verified" in unverified.content.decode()
    assert not User.objects.filter(email__in=["bob@elsewhere.test", "carol@acme.test"]).exists()
    # The domain's verification lapses: the provider speaks for nobody any more.
    Domain.objects.filter(hostname="acme.test").update(status=Domain.Status.FAILING)
    lapsed = Client().post("/accounts/sso/", {"email": "alice@acme.test"})
    assert lapsed.status_code == 400
    assert "No single sign-on is set up for acme.test" in lapsed.content.decode()


def test_an_owner_sets_up_only_a_provider_that_answers_for_itself(
    tenant, owner, other_tenant, identity_provider, settings
):
    ours = verified(tenant, "acme.test")
    theirs = verified(other_tenant, "globex.test")
    pending = Domain.objects.create(tenant=tenant, hostname="later.test", token="u" * 32)
    browser = client_for(Client, owner)
    form = {"issuer": identity_provider.issuer, "client_id": "functions-platform",
            "client_secret": "s", "domains": [ours.pk], "role": "developer"}  # fmt: skip
    # Another tenant's domain, or one not verified yet, cannot be chosen.
    for domain in (theirs, pending):
        answer = browser.post("/single-sign-on/", {**form, "domains": [domain.pk]})
        assert answer.status_code == 400 and "Select a valid choice" in answer.content.decode()
    # Owners are not made by a provider.
    assert browser.post("/single-sign-on/", {**form, "role": "owner"}).status_code == 400
    # An issuer that is not the provider's own name for itself.
    wrong = browser.post("/single-sign-on/", {**form, "issuer": identity_provider.issuer + "/x"})
    assert wrong.status_code == 400
    assert "answered 404" in wrong.content.decode()
    # The control plane's own network is not asked, unless the operator allows it.
    settings.SSO_ALLOW_PRIVATE_ISSUERS = False
    private = browser.post("/single-sign-on/", form)
    assert private.status_code == 400
    assert "loopback, private or reserved address" in private.content.decode()
    settings.SSO_ALLOW_PRIVATE_ISSUERS = True
    assert not SingleSignOn.objects.exists()
    # A developer sees nothing to change; an outsider does not see the page at all.
    assert browser.post("/single-sign-on/", form).status_code == 302
    secret = SingleSignOn.objects.get().client_secret
    assert secret != "s" and secret.startswith("gAAAA")  # encrypted at rest
    developer = member(tenant, "devi", "developer")
    assert client_for(Client, developer).post("/single-sign-on/", form).status_code == 403


def test_a_required_provider_is_the_only_way_in_and_keys_still_work(
    tenant, owner, acme_sso, identity_provider
):
    owner.email = "alice@acme.test"  # the owner is alice at the provider
    owner.save()
    prove(owner, owner.email)
    by_password = client_for(Client, owner)
    # Not before the owner has signed in through it (so it cannot lock them out).
    refused = by_password.post("/single-sign-on/required/", {"required": "on"}, follow=True)
    assert "Sign in through the provider yourself first" in refused.content.decode()
    browser = Client()
    sign_in(browser, identity_provider, "alice")
    browser.post("/single-sign-on/required/", {"required": "on"})
    tenant.refresh_from_db()
    assert tenant.require_single_sign_on
    # A member signed in with a password is sent to the provider, page and partial alike...
    developer = member(tenant, "devi", "developer")
    dev = client_for(Client, developer)
    sent = dev.get("/")
    assert sent.status_code == 302 and sent["Location"] == "/accounts/sso/acme/"
    assert (
        "signs its members in through its own identity provider"
        in dev.get(sent["Location"]).content.decode()
    )
    assert dev.get("/", HTTP_HX_REQUEST="true")["HX-Redirect"] == "/accounts/sso/acme/"
    # ...and the API refuses the session, saying why; the tenant's keys go on working.
    api = dev.get("/api/workers")
    assert api.status_code == 403 and api.json()["error"]["code"] == "single_sign_on_required"
    _, token = issue_key(tenant, "ci", ["read"])
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/workers").status_code == 200
    # The owner, signed in through it, acts as before.
    assert browser.get("/").status_code == 200
    assert browser.get("/api/workers").status_code == 200
    # Somebody else's tenant's continue page is not there.
    stranger = client_for(Client, make_user("stranger"))
    assert stranger.get("/accounts/sso/acme/").status_code == 404


def test_the_cli_is_approved_from_a_session_the_provider_signed_in(
    tenant, acme_sso, identity_provider
):
    Tenant.objects.filter(pk=tenant.pk).update(require_single_sign_on=True)
    anonymous = Client()
    asked = anonymous.post("/api/cli/logins", {"client": "functions on a laptop"},
                           content_type="application/json").json()  # fmt: skip
    browser = Client()
    sign_in(browser, identity_provider, "alice")
    Membership.objects.filter(user__email="alice@acme.test").update(role="developer")
    approved = browser.post(
        "/cli/approve/", {"code": asked["code"], "tenant": "acme", "scopes": ["read"]}
    )
    assert "Approved" in approved.content.decode()
    collected = anonymous.post("/api/cli/logins/poll", {"pollToken": asked["pollToken"]},
                               content_type="application/json").json()  # fmt: skip
    key = Client(HTTP_AUTHORIZATION=f"Bearer {collected['token']}")
    assert key.get("/api/workers").status_code == 200


def test_a_suspended_tenant_takes_in_nobody_new(tenant, acme_sso, identity_provider):
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    refused = sign_in(Client(), identity_provider, "alice")
    assert refused.status_code == 403
    assert "Acme is suspended: nobody joins it now." in refused.content.decode()
    assert not User.objects.filter(email="alice@acme.test").exists()


def test_removing_the_provider_lifts_its_requirement_and_accounts_stay(
    tenant, owner, acme_sso, identity_provider, admin_client
):
    sign_in(Client(), identity_provider, "alice")
    Tenant.objects.filter(pk=tenant.pk).update(require_single_sign_on=True)
    by_password = client_for(Client, owner)
    assert by_password.get("/")["Location"] == "/accounts/sso/acme/"
    # An operator removes a provider the tenant cannot sign in with any more.
    admin_client.post(f"/admin/sso/singlesignon/{acme_sso.pk}/delete/", {"post": "yes"})
    assert not SingleSignOn.objects.exists()
    tenant.refresh_from_db()
    assert not tenant.require_single_sign_on
    assert by_password.get("/").status_code == 200
    assert User.objects.filter(email="alice@acme.test").exists()
    # The tenant's owner sets it up again and removes it from the portal.
    owner.email = "owner@acme.test"
    owner.save()
    form = {"issuer": identity_provider.issuer, "client_id": identity_provider.client_id,
            "client_secret": "x", "domains": [Domain.objects.get().pk], "role": "viewer"}  # fmt: skip
    assert by_password.post("/single-sign-on/", form).status_code == 302
    assert by_password.post("/single-sign-on/remove/").status_code == 302
    assert not SingleSignOn.objects.exists()
    assert AuditEvent.objects.filter(action="tenant.single_sign_on_removed").exists()
