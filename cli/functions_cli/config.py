"""Where the CLI keeps its sign-in: one JSON file only its owner may read (mode 600), or,
in CI, FUNCTIONS_URL and FUNCTIONS_TOKEN in the environment (they win over the file)."""

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SignIn:
    url: str
    token: str
    tenant: str | None = None
    source: str = "file"  # or "environment"


def path() -> Path:
    if os.environ.get("FUNCTIONS_CONFIG"):
        return Path(os.environ["FUNCTIONS_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "functions" / "config.json"


def load() -> SignIn | None:
    token, url = os.environ.get("FUNCTIONS_TOKEN"), os.environ.get("FUNCTIONS_URL")
    saved = read()
    if token:
        return SignIn(
            url=(url or saved.get("url") or "").rstrip("/"), token=token, source="environment"
        )
    if not saved.get("token"):
        return None
    return SignIn(
        url=(url or saved["url"]).rstrip("/"), token=saved["token"], tenant=saved.get("tenant")
    )


def read() -> dict:
    try:
        return json.loads(path().read_text())
    except (OSError, ValueError):
        return {}


def save(url: str, token: str, tenant: str | None, scopes: list[str] | None) -> Path:
    """Written where only its owner can read it, and replaced in one step."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_suffix(".tmp")
    data = json.dumps({"url": url, "token": token, "tenant": tenant, "scopes": scopes}, indent=2)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(data + "\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
    return target


def forget() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
