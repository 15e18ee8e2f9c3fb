"""Who may see and do what, for every caller (admin, ledger services, pages).

The one place that decides who may approve a money request: an active staff member assigned to
the inmate's facility, holding the ``ledger.approve_money`` permission (given to trust officers),
and never the person who asked. A superuser sees everything but approves only where assigned.
"""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from commissary.errors import NotPermitted

from .models import DepositorBlock, DepositorLink, FacilityAssignment


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


def may_change_policy(*, staff_id: int, facility_id: int) -> bool:
    """Who may ask to change a facility's money policy: a superuser, or an active staff
    member assigned to the facility who may change it (a facility administrator)."""
    user = get_user_model().objects.filter(pk=staff_id, is_active=True, is_staff=True).first()
    if user is None:
        return False
    if user.is_superuser:
        return True
    return is_assigned(user_id=staff_id, facility_id=facility_id) and user.has_perm(
        "facilities.change_facility"
    )


def may_approve_policy(
    *, approver_id: int | None, requester_id: int | None, facility_id: int
) -> bool:
    """Whether ``approver_id`` may approve ``requester_id``'s change of the facility's money
    policy: another facility administrator assigned to the facility (``ledger.approve_policy``),
    or a superuser; never the person who asked."""
    if approver_id is None or approver_id == requester_id:
        return False
    approver = (
        get_user_model().objects.filter(pk=approver_id, is_active=True, is_staff=True).first()
    )
    if approver is None:
        return False
    if approver.is_superuser:
        return True
    return is_assigned(user_id=approver_id, facility_id=facility_id) and approver.has_perm(
        "ledger.approve_policy"
    )


def approvers_of(*, facility_id: int, requester_id: int, policy: bool = False) -> list:
    """Everyone who may decide a waiting request of the facility (a money request, or a
    policy change when ``policy``), never the requester: whom to tell it waits."""
    check = may_approve_policy if policy else may_approve
    candidates = (
        get_user_model()
        .objects.filter(
            is_active=True, is_staff=True, facility_assignments__facility_id=facility_id
        )
        .exclude(pk=requester_id)
    )
    return [
        user
        for user in candidates.order_by("pk")
        if check(approver_id=user.pk, requester_id=requester_id, facility_id=facility_id)
    ]


# --- family depositors ---------------------------------------------------------------------


class LinkNotFound(NotPermitted):
    code = "not_found"
    default_message = _("You have no approved link to this person.")


def links_of(depositor):
    """A depositor's own links, newest first, with what the pages show."""
    return (
        DepositorLink.objects.filter(depositor=depositor)
        .select_related("inmate", "inmate__facility")
        .order_by("-created_at")
    )


def is_blocked(*, depositor_id: int, facility_id: int) -> bool:
    return DepositorBlock.objects.filter(
        depositor_id=depositor_id, facility_id=facility_id
    ).exists()


def deposit_link_for(*, depositor, link_id: int):
    """The depositor's own approved link, if they may deposit over it now: another
    depositor's link, a pending or rejected one, or a block at the facility answer alike."""
    link = links_of(depositor).filter(pk=link_id).first()
    if (
        link is None
        or not link.is_approved
        or is_blocked(depositor_id=depositor.pk, facility_id=link.inmate.facility_id)
    ):
        raise LinkNotFound()
    return link
