"""What deployments tell the apps above them (which connect receivers in their ready())."""

from django.dispatch import Signal

# Sent inside the transaction that marks `deployment` ready: a receiver's writes (releases
# makes it production when its worker auto-promotes) commit with it, or not at all.
deployment_ready = Signal()
