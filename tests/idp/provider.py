"""The test identity provider from a test's side: started once per session (a real process,
tests/idp/serve.py), and a person signing in at it as a browser would (requests follows its
pages: the provider's sign-in form, then its redirect back to the platform)."""

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = [
    # username, password, email, last name ("unverified": the provider does not vouch for it)
    ("alice", "alice-pass-1", "alice@acme.test", ""),
    ("dave", "dave-pass-1", "dave@acme.test", ""),
    ("bob", "bob-pass-1", "bob@elsewhere.test", ""),
    ("carol", "carol-pass-1", "carol@acme.test", "unverified"),
]


@dataclass
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen

    def sign_in(self, authorize_url: str, username: str) -> str:
        """Signs `username` in at the provider from its authorize URL; the URL it sends the
        browser back to (the platform's callback, with the code)."""
        password = next(p[1] for p in PEOPLE if p[0] == username)
        browser = requests.Session()
        page = browser.get(authorize_url, allow_redirects=True, timeout=10)
        assert "Acme Identity" in page.text, page.text[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        nxt = re.search(r'name="next" value="([^"]*)"', page.text)
        sent = browser.post(
            page.url,
            {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password,
             "next": nxt.group(1).replace("&amp;", "&") if nxt else ""},
            headers={"Referer": page.url}, allow_redirects=False, timeout=10,
        )  # fmt: skip
        assert sent.status_code == 302, sent.text[:500]
        back = browser.get(urljoin(page.url, sent.headers["Location"]), allow_redirects=False,
                           timeout=10)  # fmt: skip
        assert back.status_code == 302, back.text[:500]
        return back.headers["Location"]


def start(port: int, redirect_uris: list[str]) -> Provider:
    config = {
        "users": [
            {"username": u, "password": p, "email": e, "last_name": last}
            for u, p, e, last in PEOPLE
        ],
        "client": {"client_id": "functions-platform", "client_secret": "a-client-secret-1",
                   "redirect_uri": " ".join(redirect_uris)},
    }  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(config, file)
    process = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "tests/idp/serve.py"), str(port), file.name],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip
    line = process.stdout.readline() if process.stdout else ""
    if line.strip() != "ready":
        process.kill()
        raise RuntimeError(f"The test identity provider did not start: {line!r}")
    client = config["client"]
    return Provider(f"http://127.0.0.1:{port}/o", client["client_id"], client["client_secret"],
                    process)  # fmt: skip
