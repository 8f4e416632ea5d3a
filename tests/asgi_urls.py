"""Views for the web handler's test (tests/test_web_handler.py): one that says which thread
served it, one that waits until told to go on, and one whose body is streamed."""

import asyncio
import threading
import uuid

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

release = threading.Event()
seen = threading.local()  # a thread started afresh has none of it


def which_thread() -> str:
    """The thread's own name (an ident may be given again to a new thread) and how many
    requests it has served."""
    seen.name = getattr(seen, "name", uuid.uuid4().hex)
    seen.served = getattr(seen, "served", 0) + 1
    return f"{seen.name} {seen.served}"


def thread(request):
    return HttpResponse(which_thread())


def held(request):
    released = release.wait(10)
    return HttpResponse(f"{which_thread()} {'released' if released else 'timed out'}")


async def streamed(request):
    async def lines():
        for n in range(3):
            await asyncio.sleep(0)
            yield f"line {n}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


urlpatterns = [
    path("internal/thread", thread),
    path("internal/held", held),
    path("internal/streamed", streamed),
]
