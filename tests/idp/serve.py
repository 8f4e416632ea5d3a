"""Starts the test identity provider: `serve.py PORT CONFIG.json`. CONFIG holds its users
({username, password, email, last_name?}) and its one client (client_id, client_secret,
redirect_uri). Prints "ready" when it answers."""

import json
import os
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def main() -> None:
    port, config = int(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    folder = tempfile.mkdtemp(prefix="idp-")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    os.environ["IDP_KEY"] = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    os.environ["IDP_DB"] = f"{folder}/idp.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.idp.settings"
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.servers.basehttp import WSGIServer, run
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    for person in config["users"]:
        User.objects.create_user(
            person["username"], person["email"], person["password"],
            last_name=person.get("last_name", ""),
        )  # fmt: skip
    client = config["client"]
    Application.objects.create(
        name="Functions platform",
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=client["redirect_uri"],
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    print("ready", flush=True)
    run("127.0.0.1", port, get_wsgi_application(), threading=True, server_cls=WSGIServer)


if __name__ == "__main__":
    main()
