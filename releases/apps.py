from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"

    def ready(self):
        from deployments.signals import deployment_ready

        from .production import promote_when_ready

        deployment_ready.connect(promote_when_ready, dispatch_uid="releases.promote_when_ready")
