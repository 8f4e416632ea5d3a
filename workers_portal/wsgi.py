"""WSGI entry point, for servers that speak WSGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_portal.settings")
application = get_wsgi_application()

from .startup import require_secure_settings  # noqa: E402 - needs the settings loaded

require_secure_settings()
