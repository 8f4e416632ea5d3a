from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    """Says who signed in as OIDC's standard claims. A user whose last name is "unverified"
    has an address the provider does not vouch for (email_verified false)."""

    oidc_claim_scope = OAuth2Validator.oidc_claim_scope | {
        "email": "email", "email_verified": "email", "preferred_username": "profile",
        "name": "profile",
    }  # fmt: skip

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": user.last_name != "unverified",
            "preferred_username": user.username,
            "name": user.get_full_name() or user.username,
        }
