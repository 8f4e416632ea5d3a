"""An account's address, proven: a link sent to it was followed (an invitation accepted, a
confirmation mail), or an identity provider that speaks for its domain vouched for it. Only
a proven address may link an account to a tenant's single sign-on."""

from allauth.account.models import EmailAddress
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction


def prove(user: User, email: str) -> bool:
    """Records that `user` holds `email` (its primary address); False when another account
    proved it first (it stays unproven here)."""
    email = email.strip()
    try:
        with transaction.atomic():
            address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
            if address is None:
                EmailAddress.objects.filter(user=user, primary=True).update(primary=False)
                address = EmailAddress.objects.create(user=user, email=email, primary=True)
            if not address.verified:
                address.verified = True
                address.save(update_fields=["verified"])
    except IntegrityError:
        return False
    return True


def proven_holder(email: str) -> User | None:
    """The account that proved `email` (at most one can: allauth keeps verified addresses
    unique)."""
    return User.objects.filter(
        emailaddress__email__iexact=email.strip(), emailaddress__verified=True
    ).first()


def ensure(user: User) -> None:
    """An account made outside allauth (the admin, a command) gets its address into allauth's
    table, unproven, before allauth's address page reads it: without a row there, the page
    would take its first change for the address to replace, and lose it."""
    if user.email and not EmailAddress.objects.filter(user=user).exists():
        EmailAddress.objects.create(user=user, email=user.email, primary=True)
