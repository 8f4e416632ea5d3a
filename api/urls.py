from django.urls import path

from .main import api

# Names live in the "api" namespace: reverse("api:logs-poll", …).
urlpatterns = [path("", api.urls)]
