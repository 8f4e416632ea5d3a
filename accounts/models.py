"""What the platform remembers of an account beyond Django's user: the browsers it was signed
in from, so that a sign-in from another one is told to its owner by mail."""

from django.conf import settings
from django.db import models

# Browsers remembered per account (the oldest seen is forgotten first).
MAX_BROWSERS = 20


class KnownBrowser(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    agent = models.CharField(max_length=200)  # the User-Agent header, cut to 200 characters
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "agent"], name="one_row_per_browser")
        ]

    def __str__(self) -> str:
        return self.agent
