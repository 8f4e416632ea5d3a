"""Single sign-on per tenant: a tenant's own OpenID Connect provider signs in the people of
its verified email domains (django-allauth's socialaccount does the protocol)."""
