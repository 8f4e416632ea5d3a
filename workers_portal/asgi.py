"""ASGI entry point (the Procfile's web process)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_portal.settings")
application = get_asgi_application()

from .startup import require_secure_settings  # noqa: E402 - needs the settings loaded

require_secure_settings()
