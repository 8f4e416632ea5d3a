"""Sending to tenants' own URLs, for log drains and events alike: only public addresses (so
a tenant cannot point the platform at its control plane, Redis or a cloud metadata service;
DRAIN_ALLOW_PRIVATE lets an operator's test set-up deliver to itself), a bounded wait, no
redirects, the answer's start kept, and the backoff between failed attempts."""

import ipaddress
import random
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings

TIMEOUT = 10.0  # seconds for one attempt
KEPT = 500  # characters of an answer kept to show


class Refused(ValueError):
    """Why a URL cannot receive anything, for people."""


def check_public(url: str, sends: str, allow_private: bool | None = None) -> None:
    """Refused unless `url` is http(s) and its name resolves only to public addresses;
    `sends` says what goes there ("drains send lines"), for the message. `allow_private`:
    the caller's own setting (else DRAIN_ALLOW_PRIVATE's)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("Use an http:// or https:// URL.")
    if settings.DRAIN_ALLOW_PRIVATE if allow_private is None else allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise Refused(f"{parts.hostname} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            named = (
                parts.hostname
                if parts.hostname == str(address)
                else f"{parts.hostname} is {address}, which"
            )
            raise Refused(
                f"{named} is a loopback, private or reserved address; {sends} only to public "
                "addresses (http:// or https://), where your service listens."
            )


@dataclass
class Answer:
    status_code: int | None  # None when nothing answered
    text: str  # its start
    error: str  # "" when it answered 2xx
    ms: int

    @property
    def ok(self) -> bool:
        return not self.error


def post(url: str, body: bytes, headers: dict[str, str], sends: str) -> Answer:
    """One attempt; the URL is checked again (its name may resolve elsewhere by now)."""
    started = time.monotonic()
    try:
        check_public(url, sends)
        response = httpx.post(
            url, content=body, headers=headers, timeout=TIMEOUT, follow_redirects=False
        )
    except (httpx.HTTPError, Refused) as exc:
        ms = int((time.monotonic() - started) * 1000)
        return Answer(None, "", f"Could not deliver: {exc}"[:KEPT], ms)
    ms = int((time.monotonic() - started) * 1000)
    error = "" if response.is_success else f"Answered {response.status_code}."
    return Answer(response.status_code, response.text[:KEPT], error, ms)


def backoff(failures: int, cap: float, base: float = 1.0) -> float:
    """Seconds before the next attempt after `failures` in a row: doubling, jittered."""
    return min(cap, base * 2.0**failures) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter
