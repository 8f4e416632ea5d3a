"""The web process's ASGI handler (workers_portal/asgi.py): request threads are kept for
later requests, yet a request still has a thread of its own while it runs, so a slow one
holds nobody else; streamed bodies still stream."""

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

from workers_portal.asgi import Handler

from . import asgi_urls


async def get(app, path: str) -> tuple[int, str]:
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000)}  # fmt: skip
    talk = ApplicationCommunicator(app, scope)
    await talk.send_input({"type": "http.request", "body": b""})
    start = await talk.receive_output(15)
    body = b""
    while True:
        part = await talk.receive_output(15)
        body += part.get("body", b"")
        if not part.get("more_body"):
            break
    return start["status"], body.decode()


@pytest.fixture
def app(settings):
    settings.ROOT_URLCONF = "tests.asgi_urls"
    asgi_urls.release.clear()
    return Handler()


def test_requests_reuse_threads_and_a_held_request_holds_nobody(app):
    async def scenario():
        first = await get(app, "/internal/thread")
        second = await get(app, "/internal/thread")
        assert first[0] == second[0] == 200
        (name, served), (again, served_then) = first[1].split(), second[1].split()
        assert again == name and int(served_then) == int(served) + 1  # the same kept thread

        held = asyncio.create_task(get(app, "/internal/held"))
        await asyncio.sleep(0.2)  # the held request is in its view, on a thread
        meanwhile = await asyncio.wait_for(get(app, "/internal/thread"), 5)
        assert not held.done()
        asgi_urls.release.set()
        status, said = await held
        assert status == 200 and said.endswith("released")
        assert said.split()[0] != meanwhile[1].split()[0]  # served beside it, on another thread

        assert await get(app, "/internal/streamed") == (200, "line 0\nline 1\nline 2\n")

    asyncio.run(scenario())
