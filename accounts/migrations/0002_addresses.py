"""Each account's address as allauth keeps addresses. Proven where an accepted invitation was
mailed to it; otherwise not yet (its owner confirms it from Your account, Email). Accounts
made from now on get theirs as they are made (accounts.receivers, accounts.addresses)."""

from django.db import migrations


def addresses(apps, schema_editor):
    User = apps.get_model("auth", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    Invitation = apps.get_model("tenancy", "Invitation")
    accepted = {
        e.lower() for e in Invitation.objects.exclude(accepted_at=None).values_list("email", flat=True)
    }
    have = set(EmailAddress.objects.values_list("user_id", flat=True))
    proven = set()
    rows = []
    for pk, email in User.objects.exclude(email="").values_list("pk", "email"):
        if pk in have:
            continue
        # (one account per proven address: allauth keeps verified addresses unique)
        verified = email.lower() in accepted and email.lower() not in proven
        if verified:
            proven.add(email.lower())
        rows.append(EmailAddress(user_id=pk, email=email, primary=True, verified=verified))
    EmailAddress.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_known_browsers"),
        ("account", "0009_emailaddress_unique_primary_email"),
        ("tenancy", "0008_tenant_require_single_sign_on"),
    ]
    operations = [migrations.RunPython(addresses, migrations.RunPython.noop)]
