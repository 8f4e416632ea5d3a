"""Keys of the shared cache: with the database's name, so that two platforms (or two test
runs) sharing one Redis keep apart what they count."""

from django.db import connection


def make_key(key: str, key_prefix: str, version: int) -> str:
    return f"{connection.settings_dict['NAME']}:{key_prefix}:{version}:{key}"
