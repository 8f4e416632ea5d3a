"""ASGI entry point (the Procfile's web process)."""

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_portal.settings")

# Request threads kept between requests (more are made while more requests run at once).
IDLE_THREADS_KEPT = 32


class Handler(ASGIHandler):
    """Django's ASGI handler, with two costs of every request taken away. Under uvicorn a
    request's synchronous work took ~2 ms more than the same request in process; profiled,
    most of the difference was these two:

    * The middleware is built as one synchronous chain, entered once. Django builds an ASGI
      handler's chain around its asynchronous view caller, so with synchronous middleware and
      views (ours, like most) a request crossed between the event loop and a thread three
      times: into the chain, back to the loop to reach the view, into a thread for the view.
      An async view (the live streams) is called from the chain as Django calls one under
      WSGI: on this event loop, its streamed body sent by the ASGI handler as before.
    * Each request runs its synchronous work on a thread of its own, as Django's does, but
      the thread is kept for a later request rather than started for this one and stopped
      after it: starting one held the event loop, every other request with it."""

    def __init__(self) -> None:
        super().__init__()
        self.idle_threads: list[ThreadPoolExecutor] = []

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # refused as Django does
        thread = self.idle_threads.pop() if self.idle_threads else ThreadPoolExecutor(1, "request")
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            if len(self.idle_threads) < IDLE_THREADS_KEPT:
                self.idle_threads.append(thread)
            else:
                thread.shutdown(wait=False)


django.setup(set_prefix=False)
application = Handler()

from .startup import require_secure_settings  # noqa: E402 - needs the settings loaded

require_secure_settings()
