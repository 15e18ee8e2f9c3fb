"""Every write of monitoring: keeping rules (each change a new version), and deciding held
deposits.

A decision moves money through ``payments`` (which moves it through the ledger): accept
credits the held deposit, reject refunds it through the provider outbox. Exactly once comes
from the ledger's status change under the inmate's lock (held → credited or held →
refunded happens once; the loser of a race finds the deposit decided and changes nothing);
the hold's own row then changes only from ``pending``. The ledger call runs first, so the
inmate's accounts are locked before the hold row (DESIGN's lock order).
"""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import audit
from commissary import errors
from payments import services as payments
from payments.models import Payment

from .models import AutoAccept, FacilityMonitoring, Hold, Rule, RuleVersion

RULE_PARAMETERS = (
    "depositor",
    "inmate",
    "payer_fingerprint",
    "payer_label",
    "amount_fen",
    "count",
    "days",
    "percent",
    "note",
)
TIMEOUT_REASON = "Not decided within the facility's review deadline"


class HoldAlreadyDecided(errors.DomainError):
    code = "hold_already_decided"
    default_message = _("This deposit has already been decided.")


class RejectionNeedsReason(errors.ValidationFailed):
    default_message = _(
        "Choose at least one reason to reject; with 'other' or an intelligence report, say more "
        "in the text."
    )


def save_rule(*, rule: Rule, staff, now: dt.datetime | None = None) -> Rule:
    """Create or change a rule: its version goes up by one and the new version is written
    (append-only), so a hold keeps pointing at the rule as it was when it fired."""
    now = now or timezone.now()
    with transaction.atomic(), audit.acting_as(staff):
        rule.version = (rule.version or 0) + 1
        rule.updated_by = staff
        rule.updated_at = now
        rule.save()
        RuleVersion.objects.create(
            rule=rule,
            version=rule.version,
            kind=rule.kind,
            parameters=model_to_dict(rule, fields=RULE_PARAMETERS),
            is_active=rule.is_active,
            changed_by=staff,
            changed_at=now,
        )
    return rule


def _decide(hold_id: int, *, state: str, staff, reasons=(), text="", now) -> Hold:
    """One conditional ``UPDATE`` (no model signal sees it), so the audit entry is written
    here, in the same transaction: who decided, the facility, the state before and after and
    the reasons given."""
    updated = Hold.objects.filter(pk=hold_id, state=Hold.State.PENDING).update(
        state=state,
        decided_by=staff,
        decided_at=now,
        reasons=list(reasons),
        reason_text=text,
    )
    if not updated:
        raise HoldAlreadyDecided()
    hold = Hold.objects.get(pk=hold_id)
    changes = {"state": [Hold.State.PENDING, state], "decided_at": [None, now.isoformat()]}
    if reasons:
        changes["reasons"] = [[], list(reasons)]
    if text:
        changes["reason_text"] = ["", text]
    audit.record(
        model=Hold,
        object_pk=hold.pk,
        object_repr=str(hold),
        changes=changes,
        facility_id=hold.facility_id,
        actor_id=staff.pk if staff is not None else None,
    )
    return hold


def accept_hold(*, hold_id: int, staff, now: dt.datetime | None = None) -> Hold:
    """Credit the held deposit through the ledger, once; the family gets its receipt."""
    now = now or timezone.now()
    hold = Hold.objects.get(pk=hold_id)
    with transaction.atomic(), audit.acting_as(staff):
        try:
            payments.credit_held_payment(deposit_id=hold.deposit_id, now=now)
        except errors.DepositNotPending:
            raise HoldAlreadyDecided() from None
        return _decide(hold_id, state=Hold.State.ACCEPTED, staff=staff, now=now)


def reject_hold(
    *, hold_id: int, staff, reasons, text: str = "", now: dt.datetime | None = None
) -> Hold:
    """Refund the held deposit through the provider, once, for at least one fixed reason."""
    reasons = [reason for reason in reasons if reason in Hold.Reason.values]
    needs_text = {Hold.Reason.OTHER, Hold.Reason.INTELLIGENCE_REPORT} & set(reasons)
    if not reasons or (needs_text and not text.strip()):
        raise RejectionNeedsReason()
    now = now or timezone.now()
    hold = Hold.objects.get(pk=hold_id)
    with transaction.atomic(), audit.acting_as(staff):
        try:
            payments.refund_held_payment(
                deposit_id=hold.deposit_id, reason="Rejected after review", now=now
            )
        except errors.DepositNotPending:
            raise HoldAlreadyDecided() from None
        return _decide(
            hold_id, state=Hold.State.REJECTED, staff=staff, reasons=reasons, text=text, now=now
        )


def assign_hold(*, hold_id: int, staff) -> int:
    """Put a pending hold on a reviewer's own list (recorded in the audit trail: the
    ``UPDATE`` passes no model signal)."""
    with transaction.atomic(), audit.acting_as(staff):
        hold = Hold.objects.filter(pk=hold_id).values("assigned_to_id", "facility_id").first()
        assigned = Hold.objects.filter(pk=hold_id, state=Hold.State.PENDING).update(
            assigned_to=staff
        )
        if assigned and hold["assigned_to_id"] != staff.pk:
            audit.record(
                model=Hold,
                object_pk=hold_id,
                object_repr=str(Hold.objects.get(pk=hold_id)),
                changes={"assigned_to": [hold["assigned_to_id"], staff.pk]},
                facility_id=hold["facility_id"],
                actor_id=staff.pk,
            )
        return assigned


def refund_stale_holds(*, now: dt.datetime | None = None) -> int:
    """Refund every hold nobody decided within its facility's deadline (default 14 days),
    recording why. Each in its own short transaction; a hold decided meanwhile is left."""
    now = now or timezone.now()
    refunded = 0
    default_days = FacilityMonitoring._meta.get_field("refund_days").default
    stale = Hold.objects.filter(state=Hold.State.PENDING).annotate(
        refund_days=F("facility__monitoring__refund_days")
    )
    for hold in stale.order_by("pk").iterator(chunk_size=500):
        days = hold.refund_days if hold.refund_days is not None else default_days
        if now - hold.created_at < dt.timedelta(days=days):
            continue
        with transaction.atomic():
            try:
                payments.refund_held_payment(
                    deposit_id=hold.deposit_id, reason=TIMEOUT_REASON, now=now
                )
                _decide(
                    hold.pk, state=Hold.State.TIMED_OUT, staff=None, text=TIMEOUT_REASON, now=now
                )
            except (errors.DepositNotPending, HoldAlreadyDecided):
                continue
        refunded += 1
    return refunded


# What the purge blanks rather than deletes: personal data kept on a money record.
BLANKED = {"payer_names": {"payer_name": ""}}


def purgeable(*, now: dt.datetime | None = None) -> dict:
    """What monitoring keeps past its retention period (``MONITORING_RETENTION_DAYS``, seven
    years by default): decided holds, and auto-accepted pairs switched off, decided or
    switched off before then, and the payer's name a provider returned on a payment made
    before then. Deposits, payments and the journal are money records and stay: of a payment
    only the name goes (``BLANKED``)."""
    now = now or timezone.now()
    before = now - dt.timedelta(days=settings.MONITORING_RETENTION_DAYS)
    return {
        "holds": Hold.objects.exclude(state=Hold.State.PENDING).filter(decided_at__lt=before),
        "auto_accepts": AutoAccept.objects.filter(is_active=False, created_at__lt=before),
        "payer_names": Payment.objects.filter(created_at__lt=before).exclude(payer_name=""),
    }


def purge_monitoring_data(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete (or, for a money record, blank) what ``purgeable`` finds, in one transaction;
    returns how many of each."""
    with transaction.atomic():
        found = purgeable(now=now)
        counts = {name: queryset.count() for name, queryset in found.items()}
        for name, queryset in found.items():
            if name in BLANKED:
                queryset.update(**BLANKED[name])
            else:
                queryset.delete()
    return counts
