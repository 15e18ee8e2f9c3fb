"""Every write about family depositors: linking to an inmate, staff decisions on links and
blocks, the depositor's own data download and the closing of their account.

Linking guards against finding out who is held where: facility, inmate number and surname
are matched in one query, and every mismatch (wrong facility, number or surname, a released
inmate) gives the same answer after the same work. Look-ups are rate-limited per depositor
and per address (``family.views``), so guessing is slow as well as blind.
"""

import datetime as dt
import unicodedata

from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import audit
from accounts.models import DepositorBlock, DepositorLink
from accounts.selectors import is_blocked
from commissary import errors
from facilities.models import Facility, Inmate, canonical_inmate_number
from ledger import services as ledger
from ledger.models import Deposit
from monitoring.models import Hold
from payments.models import Payment


class LinkNotMatched(errors.DomainError):
    code = "link_not_matched"
    default_message = _(
        "We could not link you with these details. Check the facility, the inmate number "
        "and the surname, exactly as the facility wrote them."
    )


class DepositorBlocked(errors.DomainError):
    code = "depositor_blocked"
    default_message = _("This facility does not accept links or deposits from you.")


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def link_inmate(*, depositor, facility_id: int, inmate_number: str, surname: str) -> DepositorLink:
    """Link a depositor to the inmate these details name, pending staff approval where the
    facility asks for it. The same answer (LinkNotMatched) for every mismatch. Linking the
    same inmate again returns the existing link."""
    if is_blocked(depositor_id=depositor.pk, facility_id=facility_id):
        raise DepositorBlocked()
    number, wanted_surname = canonical_inmate_number(inmate_number), _normalised(surname)
    # One query for all three details, so no mismatch costs more or less than another.
    candidates = list(
        Inmate.objects.filter(
            facility_id=facility_id,
            inmate_number__iexact=number,
            status=Inmate.Status.ACTIVE,
        ).select_related("facility")
    )
    inmate = next((c for c in candidates if _normalised(c.surname) == wanted_surname), None)
    if inmate is None:
        raise LinkNotMatched()
    with transaction.atomic():
        link, created = DepositorLink.objects.get_or_create(
            depositor=depositor,
            inmate=inmate,
            defaults={
                "entered_inmate_number": inmate.inmate_number,
                "entered_surname": surname.strip(),
                "status": (
                    DepositorLink.Status.PENDING
                    if inmate.facility.links_need_approval
                    else DepositorLink.Status.APPROVED
                ),
            },
        )
    return link


def decide_link(
    *, link_id: int, status: str, staff, reason: str = "", now: dt.datetime | None = None
) -> DepositorLink:
    """Staff approve or reject a link (a rejection says why)."""
    if status not in (DepositorLink.Status.APPROVED, DepositorLink.Status.REJECTED):
        raise errors.ValidationFailed(_("A link is approved or rejected."))
    if status == DepositorLink.Status.REJECTED and not reason.strip():
        raise errors.ValidationFailed(_("Say why the link is rejected."))
    with audit.acting_as(staff), transaction.atomic():
        link = DepositorLink.objects.select_for_update().select_related("inmate").get(pk=link_id)
        link.status = status
        link.decision_reason = reason.strip()
        link.decided_by = staff
        link.decided_at = now or timezone.now()
        link.save(update_fields=["status", "decision_reason", "decided_by", "decided_at"])
    return link


def block_depositor(*, depositor_id: int, facility_id: int, reason: str, staff) -> DepositorBlock:
    """Stop a depositor linking to or depositing for anyone at the facility; says why."""
    if not reason.strip():
        raise errors.ValidationFailed(_("Say why the depositor is blocked."))
    with audit.acting_as(staff), transaction.atomic():
        block, _created = DepositorBlock.objects.get_or_create(
            depositor_id=depositor_id,
            facility_id=facility_id,
            defaults={"reason": reason.strip(), "created_by": staff},
        )
    return block


def export_depositor_data(*, depositor, remote_addr: str | None = None) -> dict:
    """A depositor downloads everything kept about them; the download is in the audit trail
    (for the facility of their links, when they have links at one facility only)."""
    with transaction.atomic():
        exported = depositor_data(depositor=depositor)
        _record_depositor_event(
            depositor, audit.EXPORT, actor_id=depositor.pk, remote_addr=remote_addr
        )
    return exported


def _record_depositor_event(depositor, event: str, **kwargs) -> None:
    """One entry per facility the depositor is linked at (none linked: one without facility),
    so each facility's auditors see what concerns them."""
    facility_ids = sorted(
        set(
            DepositorLink.objects.filter(depositor=depositor).values_list(
                "inmate__facility_id", flat=True
            )
        )
    ) or [None]
    for facility_id in facility_ids:
        audit.record(
            model=get_user_model(),
            object_pk=depositor.pk,
            object_repr=depositor.get_username(),
            changes={event: ["", depositor.get_username()]},
            facility_id=facility_id,
            action=LogEntry.Action.ACCESS,
            event=event,
            **kwargs,
        )


def depositor_data(*, depositor) -> dict:
    """Everything the app keeps about a depositor, for their own download."""
    from allauth.account.models import EmailAddress

    # Who paid each deposit, as the provider returned it (the masked account, the name where
    # one was returned); the keyed hash it is matched under is not theirs to read.
    payers = {
        deposit_id: {"account": label, "name": name}
        for deposit_id, label, name in Payment.objects.filter(deposit__depositor=depositor)
        .exclude(payer_label="", payer_name="")
        .values_list("deposit_id", "payer_label", "payer_name")
    }
    return {
        "account": {
            "email": depositor.email,
            "date_joined": depositor.date_joined.isoformat(),
            "last_login": depositor.last_login.isoformat() if depositor.last_login else None,
            "email_addresses": [
                {"email": address.email, "verified": address.verified}
                for address in EmailAddress.objects.filter(user=depositor)
            ],
        },
        "links": [
            {
                "facility": link.inmate.facility.name,
                "inmate_number": link.entered_inmate_number,
                "surname": link.entered_surname,
                "status": link.status,
                "created_at": link.created_at.isoformat(),
            }
            for link in DepositorLink.objects.filter(depositor=depositor)
            .select_related("inmate__facility")
            .order_by("created_at")
        ],
        "deposits": [
            {
                "reference": str(deposit.reference),
                "amount_fen": deposit.amount_fen,
                "fee_fen": deposit.fee_fen,
                "currency": deposit.currency,
                "status": deposit.status,
                "created_at": deposit.created_at.isoformat(),
                "resolved_at": deposit.resolved_at.isoformat() if deposit.resolved_at else None,
                "paid_by": payers.get(deposit.pk),
            }
            for deposit in Deposit.objects.filter(depositor=depositor).order_by("created_at")
        ],
        # Reviews of their deposits and how each ended; never the rule that fired, who decided
        # or why (staff notes).
        "reviews": [
            {
                "deposit": str(review["deposit__reference"]),
                "held_at": review["created_at"].isoformat(),
                "outcome": review["state"],
                "decided_at": review["decided_at"].isoformat() if review["decided_at"] else None,
            }
            for review in Hold.objects.filter(depositor=depositor)
            .order_by("created_at")
            .values("deposit__reference", "created_at", "state", "decided_at")
        ],
    }


def close_depositor_account(*, depositor) -> None:
    """Close a family depositor's account: their deposits stay in the ledger, as the law
    requires, detached from them; their links, addresses and the account itself go."""
    if depositor.is_staff or depositor.is_superuser:
        raise errors.NotPermitted(_("Staff accounts are closed by an administrator."))
    # The audit trail records the closing without naming the closed account as the actor:
    # an entry pointing at a user deleted in the same transaction could not commit.
    with set_actor(None), transaction.atomic():
        # Written first, while the links still say which facilities it concerns; the
        # depositor is named by their address, not by a reference to the row going away.
        _record_depositor_event(depositor, audit.ACCOUNT_CLOSED, actor_email=depositor.email)
        ledger.detach_depositor(depositor_id=depositor.pk)
        get_user_model().objects.filter(pk=depositor.pk).delete()


def facilities_for_linking():
    return Facility.objects.order_by("name")
