"""New API keys are made by purpose: the default is what a newcomer's first call needs
(calling a private worker); exact scopes can still be chosen."""

import pytest
from django.urls import reverse

from workers.models import ApiKey

pytestmark = pytest.mark.django_db


def test_the_default_key_calls_private_workers(owner_client):
    page = owner_client.get(reverse("api-keys")).content.decode()
    assert "What is it for?" in page
    assert 'value="call" ' in page and "checked" in page.split('value="call"')[1].split(">")[0]
    owner_client.post(reverse("api-keys"), {"name": "first"})
    assert ApiKey.objects.get(name="first").scopes == ["invoke"]


@pytest.mark.parametrize(
    ("purpose", "scopes"),
    [("ci", ["deploy", "read"]), ("read", ["read"]), ("all", ["deploy", "invoke", "read"])],
)
def test_a_purpose_gives_its_scopes(owner_client, purpose, scopes):
    owner_client.post(reverse("api-keys"), {"name": purpose, "purpose": purpose})
    assert ApiKey.objects.get(name=purpose).scopes == scopes


def test_chosen_scopes_win_over_the_purpose(owner_client):
    owner_client.post(reverse("api-keys"), {"name": "exact", "purpose": "all", "scopes": ["read"]})
    assert ApiKey.objects.get(name="exact").scopes == ["read"]
