"""Workers' secrets, encrypted at rest with Fernet (several keys, for rotation)."""

import json
import re
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.SECRETS_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """The same value, encrypted with the first (newest) key."""
    return fernet().rotate(token.encode()).decode()


def seal(values: dict[str, str]) -> str:
    return encrypt(json.dumps(values, sort_keys=True)) if values else ""


def unseal(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(decrypt(token))
    except InvalidToken as exc:
        raise RuntimeError(
            "A secret could not be decrypted: is its key missing from SECRETS_ENCRYPTION_KEYS?"
        ) from exc
