"""The operations on a namespace, for the API now and for workers' code through the runtime:
get, put (with a time to live and metadata), delete, list by prefix with a cursor, and an
atomic compare-and-set for counters and locks. Bounded: keys up to 512 characters, values up
to 1 MiB, metadata up to 1 KB of JSON; each tenant's keys and bytes within its quotas."""

import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from tenancy.models import Tenant
from tenancy.quotas import QuotaExceeded, told

from .models import Entry, Namespace

MAX_KEY_CHARS = 512  # characters (at most 2 KB of UTF-8): what the API can describe
MAX_VALUE_BYTES = 1024 * 1024
MAX_METADATA_BYTES = 1024
MAX_LIST = 1000


class KvError(ValueError):
    """What is wrong with an operation, for people (a 400; `status` 413 for a value too big)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status

    @property
    def code(self) -> str:
        """The contract's code for it, wherever it is answered."""
        return "payload_too_large" if self.status == 413 else "invalid_request"


@dataclass
class Conflict:
    """A compare-and-set that did not hold: the version there now (0: no such key)."""

    version: int


def live(namespace: Namespace) -> Any:
    """Its entries that have not expired."""
    return namespace.entries.filter(Q(expires_at=None) | Q(expires_at__gt=timezone.now()))


def checked_key(key: str) -> str:
    if not key:
        raise KvError("A key cannot be empty.")
    if len(key) > MAX_KEY_CHARS:
        raise KvError(f"A key holds at most {MAX_KEY_CHARS} characters.")
    if "\x00" in key:
        raise KvError("A key cannot hold a NUL character.")
    return key


def get(namespace: Namespace, key: str) -> Entry | None:
    found: Entry | None = live(namespace).filter(key=checked_key(key)).first()
    return found


def put(
    namespace: Namespace,
    key: str,
    value: bytes,
    ttl_seconds: float | None = None,
    metadata: Any = None,
    if_version: int | None = None,
) -> Entry | Conflict:
    """Writes the value. With `if_version`, only if the key's version is that one now (0:
    only if there is no such key); else the version there, as a Conflict."""
    checked_key(key)
    if len(value) > MAX_VALUE_BYTES:
        raise KvError(
            f"A value holds at most {MAX_VALUE_BYTES} bytes; this one has {len(value)}.", 413
        )
    meta_bytes = len(json.dumps(metadata).encode()) if metadata is not None else 0
    if meta_bytes > MAX_METADATA_BYTES:
        raise KvError(f"Metadata holds at most {MAX_METADATA_BYTES} bytes of JSON.")
    if ttl_seconds is not None and ttl_seconds < 1:
        raise KvError("A time to live is at least 1 second.")
    expires = timezone.now() + timedelta(seconds=ttl_seconds) if ttl_seconds else None
    size = len(key.encode()) + len(value) + meta_bytes
    tenant = namespace.tenant
    if connection.vendor == "postgresql" and fits(tenant, size):
        return upsert(namespace, key, value, size, metadata, expires, if_version)
    with transaction.atomic():
        current = Entry.objects.select_for_update().filter(namespace=namespace, key=key).first()
        expired = (
            current is not None
            and current.expires_at is not None
            and (current.expires_at <= timezone.now())
        )
        now_version = 0 if current is None or expired else current.version
        if if_version is not None and if_version != now_version:
            return Conflict(now_version)
        room(
            tenant,
            adding_keys=0 if current else 1,
            adding_bytes=size - (current.size if current else 0),
        )
        if current is None:
            try:
                with transaction.atomic():
                    return Entry.objects.create(
                        namespace=namespace, key=key, value=value, size=size,
                        metadata=metadata, expires_at=expires,
                    )  # fmt: skip
            except IntegrityError:  # written by another call a moment before
                there = Entry.objects.get(namespace=namespace, key=key)
                if if_version is not None:
                    return Conflict(there.version)
                current = there
        current.value, current.size, current.metadata = value, size, metadata
        current.expires_at, current.version = expires, current.version + 1
        current.save()
        return current


# One statement, one round trip: the row as it was (for the quota's count and a conflict's
# answer) and the write, which holds only when `if_version` does. A key never stored is
# inserted only when no version or version 0 was asked for; an expired one counts as version 0.
UPSERT_SQL = f"""
WITH old AS (
  SELECT size, CASE WHEN expires_at <= now() THEN 0 ELSE version END AS version
  FROM {Entry._meta.db_table} WHERE namespace_id = %(namespace)s AND key = %(key)s FOR UPDATE
),
written AS (
  INSERT INTO {Entry._meta.db_table} AS e (namespace_id, key, value, size, metadata,
    expires_at, version, updated)
  SELECT %(namespace)s, %(key)s, %(value)s, %(size)s, %(metadata)s::jsonb, %(expires)s, 1, now()
  WHERE %(if_version)s::bigint IS NULL OR %(if_version)s::bigint = 0 OR EXISTS (SELECT FROM old)
  ON CONFLICT (namespace_id, key) DO UPDATE SET value = EXCLUDED.value, size = EXCLUDED.size,
    metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at, updated = EXCLUDED.updated,
    version = e.version + 1
  WHERE %(if_version)s::bigint IS NULL OR %(if_version)s::bigint =
    CASE WHEN e.expires_at <= now() THEN 0 ELSE e.version END
  RETURNING id, version, updated
)
SELECT (SELECT size FROM old), (SELECT version FROM old), written.*
FROM (SELECT 1) one LEFT JOIN written ON true
"""  # noqa: S608 - the table's name is the only thing formatted in


def fits(tenant: Tenant, size: int) -> bool:
    """Whether a new key of this size would be within the tenant's quotas: then a write needs
    no look at the row it replaces before it is made."""
    keys, held_bytes = counted(tenant)
    return keys + 1 <= tenant.quota("max_kv_keys") and held_bytes + size <= tenant.quota(
        "max_kv_bytes"
    )


def upsert(
    namespace: Namespace,
    key: str,
    value: bytes,
    size: int,
    metadata: Any,
    expires: datetime | None,
    if_version: int | None,
) -> Entry | Conflict:
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, {
            "namespace": namespace.pk, "key": key, "value": value, "size": size,
            "metadata": json.dumps(metadata) if metadata is not None else None,
            "expires": expires, "if_version": if_version,
        })  # fmt: skip
        old_size, old_version, entry_id, version, updated = cursor.fetchone()
    if entry_id is None:
        if old_size is None:  # none before this statement; another call may have made one
            there = live(namespace).filter(key=key).values_list("version", flat=True).first()
            return Conflict(there or 0)
        return Conflict(old_version)
    count(namespace.tenant, 0 if old_size is not None else 1, size - (old_size or 0))
    return Entry(
        id=entry_id, namespace=namespace, key=key, value=value, size=size, metadata=metadata,
        expires_at=expires, version=version, updated=updated,
    )  # fmt: skip


def delete(namespace: Namespace, key: str) -> bool:
    _counted.pop(namespace.tenant_id, None)
    return namespace.entries.filter(key=checked_key(key)).delete()[0] > 0


def listing(
    namespace: Namespace,
    prefix: str = "",
    cursor: str = "",
    limit: int = 100,
    with_values: bool = False,
) -> tuple[list[Entry], str | None]:
    """Entries by key from `prefix`, after `cursor` (their values only `with_values`: a value
    may be a megabyte); the next page's cursor, or None."""
    limit = max(1, min(limit, MAX_LIST))
    found = live(namespace).filter(key__startswith=prefix).order_by("key")
    if cursor:
        try:
            after = base64.urlsafe_b64decode(cursor.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            raise KvError("This cursor is not one this platform gave.") from None
        found = found.filter(key__gt=after)
    page = list((found if with_values else found.defer("value"))[: limit + 1])
    if len(page) > limit:
        page = page[:limit]
        return page, base64.urlsafe_b64encode(page[-1].key.encode()).decode()
    return page, None


def empty(namespace: Namespace) -> int:
    _counted.pop(namespace.tenant_id, None)
    return namespace.entries.all().delete()[0]


def held(tenant: Tenant) -> tuple[int, int]:
    """The tenant's keys and bytes stored (expired ones count until they are swept)."""
    found = Entry.objects.filter(namespace__tenant=tenant).aggregate(n=Count("id"), b=Sum("size"))
    return int(found["n"] or 0), int(found["b"] or 0)


# What each tenant holds, as this process last counted it plus what it wrote since: counting
# a tenant's rows on every write would cost a scan of them all. Another process's writes are
# seen within HELD_FRESH seconds, so a tenant can pass its quota by at most what it writes in
# that time (and that is bounded by its operations per minute).
HELD_FRESH = 2.0
_counted: dict[int, tuple[float, int, int]] = {}


def counted(tenant: Tenant) -> tuple[int, int]:
    """The tenant's keys and bytes as this process counts them (see `_counted`)."""
    now = time.monotonic()
    found = _counted.get(tenant.pk)
    if found is not None and found[0] > now:
        return found[1], found[2]
    keys, size = held(tenant)
    if len(_counted) > 10_000:
        _counted.clear()
    _counted[tenant.pk] = (now + HELD_FRESH, keys, size)
    return keys, size


def count(tenant: Tenant, adding_keys: int, adding_bytes: int) -> None:
    """Adds a write to what this process counts the tenant holds."""
    found = _counted.get(tenant.pk)
    if found is not None:
        expires, keys, size = found
        _counted[tenant.pk] = (expires, keys + max(0, adding_keys), size + max(0, adding_bytes))


def room(tenant: Tenant, adding_keys: int, adding_bytes: int) -> None:
    if adding_keys <= 0 and adding_bytes <= 0:
        return
    keys, size = counted(tenant)
    key_limit, byte_limit = tenant.quota("max_kv_keys"), tenant.quota("max_kv_bytes")
    if keys + adding_keys > key_limit:
        raise told(tenant, "max_kv_keys", QuotaExceeded(
            f"This tenant has reached its quota of {key_limit} stored keys; delete some first, "
            "or ask the platform's operators for a larger quota."))  # fmt: skip
    if size + adding_bytes > byte_limit:
        raise told(tenant, "max_kv_bytes", QuotaExceeded(
            f"This tenant has reached its quota of {byte_limit} bytes stored; delete some "
            "first, or ask the platform's operators for a larger quota."))  # fmt: skip
    count(tenant, adding_keys, adding_bytes)


def sweep(now: datetime | None = None) -> int:
    """Removes expired entries (reads already skip them)."""
    return Entry.objects.filter(expires_at__lte=now or timezone.now()).delete()[0]
