"""A real OpenID Connect provider for the single sign-on tests: a second Django process with
django-oauth-toolkit's OIDC (tests/idp/serve.py starts it), its own users and sign-in page."""
