from .models import Membership


def tenancy(request):
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        memberships = Membership.objects.filter(user=user).select_related("tenant")
    return {
        "tenant": getattr(request, "tenant", None),
        "membership": getattr(request, "membership", None),
        "memberships": memberships,
    }
