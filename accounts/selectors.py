"""Who may see and do what, for every caller (admin, ledger services, pages).

The one place that decides who may approve a money request: an active staff member assigned to
the inmate's facility, holding the ``ledger.approve_money`` permission (given to trust officers),
and never the person who asked. A superuser sees everything but approves only where assigned.
"""

from django.contrib.auth import get_user_model

from .models import FacilityAssignment


def facility_ids_for(user) -> set[int] | None:
    """The facilities a user may see: None means all (a superuser)."""
    if user.is_superuser:
        return None
    if not (user.is_active and user.is_staff):
        return set()
    return set(
        FacilityAssignment.objects.filter(user_id=user.pk).values_list("facility_id", flat=True)
    )


def is_assigned(*, user_id: int, facility_id: int) -> bool:
    return FacilityAssignment.objects.filter(user_id=user_id, facility_id=facility_id).exists()


def may_request(*, staff_id: int, facility_id: int) -> bool:
    """Active staff assigned to the facility, or a superuser, may ask for a money action."""
    user = get_user_model().objects.filter(pk=staff_id, is_active=True, is_staff=True).first()
    if user is None:
        return False
    return user.is_superuser or is_assigned(user_id=staff_id, facility_id=facility_id)


def may_approve(*, approver_id: int | None, requester_id: int | None, facility_id: int) -> bool:
    """Whether ``approver_id`` may approve ``requester_id``'s money request at the facility."""
    if approver_id is None or approver_id == requester_id:
        return False
    approver = (
        get_user_model().objects.filter(pk=approver_id, is_active=True, is_staff=True).first()
    )
    if approver is None or not is_assigned(user_id=approver_id, facility_id=facility_id):
        return False
    return approver.has_perm("ledger.approve_money")
