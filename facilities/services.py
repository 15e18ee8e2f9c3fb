"""Writes for facilities, inmates and kiosk devices: intake, transfer, release, PINs, device
keys, caps. Nothing here writes a ledger row: money and caps move only through
``ledger.services``, called inside this module's own transaction (and before its own row
locks: see ``ledger.locks`` for the order) so an inmate's status and ledger never disagree.

About 420 lines: intake, transfer and release share the inmate's lock order with the ledger,
which reads best in one module.
"""

import datetime as dt
import secrets
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import audit
from commissary.errors import GradeInUse, InmateNotFound, ValidationFailed
from ledger import services as ledger_services
from ledger.locks import lock_inmate_row
from ledger.models import StaffRequest
from ledger.schedules import ensure_rollover_schedule

from .models import (
    POLICY_CHANGE_FIELDS,
    Facility,
    Grade,
    HousingUnit,
    Inmate,
    KioskDevice,
    canonical_inmate_number,
    hash_device_key,
)

INMATE_NUMBER_CONSTRAINT = "inmate_number_unique_per_facility"


def _is_inmate_number_taken(error: IntegrityError) -> bool:
    """Whether ``error`` is the unique inmate number per facility, and nothing else (another
    violation, such as a card token drawn twice, surfaces as itself)."""
    cause = error.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return diag.constraint_name == INMATE_NUMBER_CONSTRAINT
    # SQLite names the columns: "UNIQUE constraint failed: facilities_inmate.facility_id,
    # facilities_inmate.inmate_number"
    message = str(error)
    return "UNIQUE" in message and message.rstrip().endswith("facilities_inmate.inmate_number")


def create_facility(*, code: str, name: str, **policy) -> Facility:
    """Create a facility with its policy and open its system accounts. Without a threshold
    of its own, a facility whose balance cap is below the default threshold gets the cap as
    its threshold (the threshold is never above the cap)."""
    if "adjustment_approval_threshold_fen" not in policy and "balance_cap_fen" in policy:
        default_fen = Facility._meta.get_field("adjustment_approval_threshold_fen").default
        policy["adjustment_approval_threshold_fen"] = min(default_fen, policy["balance_cap_fen"])
    with transaction.atomic():
        facility = Facility(code=code, name=name, **policy)
        facility.full_clean()
        facility.save()
        ledger_services.open_facility_accounts(facility=facility)
        ensure_rollover_schedule(facility.timezone)
    return facility


def save_facility_policy(*, facility: Facility) -> Facility:
    """Save a facility's settings other than its caps (``update_facility_caps``) and its money
    policy (``POLICY_CHANGE_FIELDS``: they change only through a ``policy_change`` request a
    second facility administrator approves, ``ledger.services.request_policy_change``), and
    make sure its timezone has a rollover schedule. Policy values set on ``facility`` are not
    written."""
    kept = {"id", "monthly_cap_fen", "balance_cap_fen", *POLICY_CHANGE_FIELDS}
    settings_fields = [
        field.name for field in Facility._meta.concrete_fields if field.name not in kept
    ]
    with transaction.atomic():
        facility.full_clean()
        facility.save(update_fields=settings_fields)
        ensure_rollover_schedule(facility.timezone)
    return facility


def update_facility_caps(
    *, facility_id: int, monthly_cap_fen: int, balance_cap_fen: int
) -> Facility:
    """Change a facility's caps: a ledger service, under every inmate's account lock (see
    ``ledger.services.change_facility_caps`` for what is refused and what a lowered cap means)."""
    ledger_services.change_facility_caps(
        facility_id=facility_id, monthly_cap_fen=monthly_cap_fen, balance_cap_fen=balance_cap_fen
    )
    return Facility.objects.get(pk=facility_id)


def _checked_pin(pin: str) -> str:
    if not isinstance(pin, str) or not pin.isdigit() or not 4 <= len(pin) <= 8:
        raise ValidationFailed("A PIN is 4 to 8 digits.")
    return pin


def intake_inmate(
    *,
    facility: Facility,
    inmate_number: str,
    surname: str,
    given_name: str = "",
    pin: str,
    housing_unit: HousingUnit | None = None,
    now: dt.datetime | None = None,
) -> Inmate:
    """Admit an inmate: the record, a hashed PIN, a card token, and the ledger accounts."""
    pin = _checked_pin(pin)
    if not inmate_number.strip() or not surname.strip():
        raise ValidationFailed("An inmate number and a surname are required.")
    if housing_unit is not None and housing_unit.facility_id != facility.pk:
        raise ValidationFailed("The housing unit belongs to another facility.")
    try:
        with transaction.atomic():
            inmate = Inmate.objects.create(
                facility=facility,
                inmate_number=canonical_inmate_number(inmate_number),
                surname=surname.strip(),
                given_name=given_name.strip(),
                housing_unit=housing_unit,
                pin_hash=make_password(pin),
                card_token=secrets.token_urlsafe(24),
                admitted_at=now or timezone.now(),
            )
            ledger_services.open_inmate_accounts(inmate=inmate)
    except IntegrityError as error:
        if not _is_inmate_number_taken(error):
            raise
        raise ValidationFailed(
            f"Inmate number {inmate_number} is already in use at {facility.name}."
        ) from None
    return inmate


def admit_roster(*, inmates: list[Inmate], now: dt.datetime | None = None) -> list[Inmate]:
    """Admit many inmates at once (a roster import, already validated): the rows
    ``intake_inmate`` writes, in bulk, with a card token each and no PIN yet (hashing a PIN
    costs ~0.3 s; staff set each PIN on the inmate's page before the first kiosk visit).
    The inmates may belong to several facilities; each facility's accounts open with its cap."""
    now = now or timezone.now()
    for inmate in inmates:
        inmate.card_token = secrets.token_urlsafe(24)
        inmate.admitted_at = now
        inmate.pin_hash = ""
        inmate.status = Inmate.Status.ACTIVE
    try:
        with transaction.atomic():
            created = Inmate.objects.bulk_create(inmates)
            by_facility: dict[int, list[Inmate]] = {}
            for inmate in created:
                by_facility.setdefault(inmate.facility_id, []).append(inmate)
            for facility_inmates in by_facility.values():
                ledger_services.open_accounts_for_inmates(inmates=facility_inmates)
    except IntegrityError as error:
        if not _is_inmate_number_taken(error):
            raise
        raise ValidationFailed(
            "An inmate number in the roster is already in use at its facility."
        ) from None
    return created


def record_roster_import(
    *,
    staff_id: int,
    file_name: str,
    sha256: str,
    rows: int,
    admitted_by_facility: dict[int, int],
) -> None:
    """The audit trail's summary of a roster import (its inmates are bulk-inserted, which no
    model signal sees): one entry per facility admitted into, with the counts and the file's
    SHA-256, so the file can be matched to the entry later."""
    with transaction.atomic():
        for facility in Facility.objects.filter(pk__in=admitted_by_facility).order_by("pk"):
            audit.record(
                model=Facility,
                object_pk=facility.pk,
                object_repr=str(facility),
                changes={"admitted": [0, admitted_by_facility[facility.pk]]},
                facility_id=facility.pk,
                actor_id=staff_id,
                event=audit.ROSTER_IMPORT,
                file_name=file_name,
                sha256=sha256,
                rows=rows,
            )


def set_inmate_pin(*, inmate_id: int, pin: str) -> None:
    pin = _checked_pin(pin)
    if not Inmate.objects.filter(pk=inmate_id).update(pin_hash=make_password(pin)):
        raise InmateNotFound()


def transfer_inmate(
    *,
    inmate_id: int,
    to_facility: Facility,
    staff_id: int | None,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    inmate_number: str | None = None,
    housing_unit: HousingUnit | None = None,
) -> Inmate:
    """Move an inmate to another facility, keeping one ledger (see
    ``ledger.services.move_inmate_ledger`` for what happens to money over the new caps).

    Grades are facility policy, so the inmate takes the new facility's grade of the same name,
    or none when it has no such grade (no spending limit until its staff assign one; the
    balance cap still holds). The grade column is saved through the model with the rest of the
    move, so the change is in the audit trail as ``assign_grade``'s is. A transfer that is
    refused changes no grade: it is one transaction.

    Lock order: the ledger takes the inmate's account rows first, then this takes the inmate
    row ``FOR NO KEY UPDATE`` (never ``FOR UPDATE``, which waits on the key share of every
    deposit and purchase insert and so deadlocked against them), then the new grade
    ``FOR KEY SHARE``, as ``assign_grade`` does. A replay of the same key returns the inmate as
    the first call left it."""
    if housing_unit is not None and housing_unit.facility_id != to_facility.pk:
        raise ValidationFailed("The housing unit belongs to another facility.")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            event = ledger_services.move_inmate_ledger(
                inmate_id=inmate_id,
                to_facility_id=to_facility.pk,
                staff_id=staff_id,
                idempotency_key=idempotency_key,
                idempotency_scope=idempotency_scope,
            )
            lock_inmate_row(cursor, inmate_id=inmate_id)
            inmate = Inmate.objects.select_related("grade").get(pk=inmate_id)
            if event.is_replay:
                return inmate  # the first call already moved the record
            grade_name = inmate.grade.name if inmate.grade is not None else None
            inmate.facility = to_facility
            inmate.housing_unit = housing_unit
            if inmate_number:
                inmate.inmate_number = canonical_inmate_number(inmate_number)
            inmate.grade_id = _grade_named(cursor, facility_id=to_facility.pk, name=grade_name)
            inmate.save(update_fields=["facility", "housing_unit", "inmate_number", "grade"])
    except IntegrityError as error:
        if not _is_inmate_number_taken(error):
            raise
        raise ValidationFailed(
            f"Inmate number {inmate_number or ''} is already in use at {to_facility.name}."
        ) from None
    return inmate


def release_inmate(
    *,
    inmate_id: int,
    staff_id: int | None,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    approved_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> Inmate:
    """Release an inmate: pending deposits expire, spendable and held money is paid out, the
    accounts close, and the record is kept (the journal refers to it forever). Same lock
    order as a transfer; a replay of the same key returns the released inmate.

    A staff member's release paying out more than the facility's threshold needs a second
    trust officer (``approved_by_id``) and is refused without one (``ApprovalRequired``,
    nothing changed): staff ask through ``release_or_request_approval`` or a money request."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        event = ledger_services.close_inmate_ledger(
            inmate_id=inmate_id,
            staff_id=staff_id,
            idempotency_key=idempotency_key,
            idempotency_scope=idempotency_scope,
            approved_by_id=approved_by_id,
            now=now,
        )
        lock_inmate_row(cursor, inmate_id=inmate_id)
        inmate = Inmate.objects.get(pk=inmate_id)
        if event.is_replay:
            return inmate
        inmate.status = Inmate.Status.RELEASED
        inmate.released_at = event.created_at
        inmate.card_token = None
        inmate.save(update_fields=["status", "released_at", "card_token"])
    return inmate


@dataclass(frozen=True)
class ReleaseOutcome:
    """What a staff member's release did: ``inmate`` as it stands afterwards, and the money
    request waiting for a second trust officer when the payout was above the threshold
    (the inmate is then still active and nothing has been paid out)."""

    inmate: Inmate
    waiting_request: StaffRequest | None = None

    @property
    def is_waiting(self) -> bool:
        return self.waiting_request is not None


def release_or_request_approval(
    *,
    inmate_id: int,
    staff_id: int,
    reason: str,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> ReleaseOutcome:
    """A staff member releases an inmate (the inmate admin's release action). A payout at or
    below the facility's threshold is released at once (``release_inmate``, under
    ``idempotency_key``); one above it files a ``release_payout`` money request with the
    reason, which pays out only once a second trust officer approves it, exactly like a trust
    officer's own request. The decision is taken under the inmate's account lock and the
    release runs in the same transaction, so money arriving meanwhile cannot slip a large
    payout past the threshold."""
    with transaction.atomic():
        waiting = ledger_services.file_release_request_if_needed(
            inmate_id=inmate_id, reason=reason, staff_id=staff_id, now=now
        )
        if waiting is not None:
            return ReleaseOutcome(inmate=Inmate.objects.get(pk=inmate_id), waiting_request=waiting)
        inmate = release_inmate(
            inmate_id=inmate_id, staff_id=staff_id, idempotency_key=idempotency_key, now=now
        )
    return ReleaseOutcome(inmate=inmate)


def assign_grade(*, inmate_id: int, grade_id: int | None) -> None:
    """Set an inmate's management grade (its spending limit), a grade of the inmate's own
    facility. The inmate row is read under its lock and only the grade column is written, so
    a release or transfer saved meanwhile is never overwritten by a stale form; the save goes
    through the model, so the change is in the audit trail with the person who made it.

    Lock order: the inmate row (``FOR NO KEY UPDATE``, as a transfer takes it), then the
    grade's ``FOR KEY SHARE``, which ``delete_grade``'s ``FOR UPDATE`` waits on (and the other
    way round), so a grade is never deleted while an inmate is given it."""
    with transaction.atomic(), connection.cursor() as cursor:
        lock_inmate_row(cursor, inmate_id=inmate_id)
        inmate = Inmate.objects.filter(pk=inmate_id).first()
        if inmate is None:
            raise InmateNotFound()
        if grade_id is not None:
            cursor.execute(
                f"SELECT id FROM facilities_grade WHERE id = %s AND facility_id = %s "  # noqa: S608
                f"{_key_share()}",
                [grade_id, inmate.facility_id],
            )
            if cursor.fetchone() is None:
                raise ValidationFailed(_("That grade belongs to another facility."))
        if inmate.grade_id == grade_id:
            return
        inmate.grade_id = grade_id
        inmate.save(update_fields=["grade"])


def delete_grade(*, grade_id: int) -> None:
    """Delete a grade no inmate holds (released inmates included: their records keep the
    grade they had). A grade in use is refused and nothing is deleted; the grade row is
    locked first, so an inmate given the grade meanwhile is either seen here or refused
    there."""
    with transaction.atomic():
        grade = Grade.objects.select_for_update().filter(pk=grade_id).first()
        if grade is None:
            return  # already gone: deleting twice deletes once
        holders = grade.inmates.count()
        if holders:
            raise GradeInUse(
                ngettext(
                    "%(count)d inmate holds the grade %(grade)s: give them another grade "
                    "before deleting it.",
                    "%(count)d inmates hold the grade %(grade)s: give them another grade "
                    "before deleting it.",
                    holders,
                )
                % {"count": holders, "grade": grade.name}
            )
        grade.delete()


def _grade_named(cursor, *, facility_id: int, name: str | None) -> int | None:
    """The id of the facility's grade called ``name`` (None: no name, or no such grade), held
    ``FOR KEY SHARE``: a ``delete_grade`` of it waits until the inmate holds it, and then
    refuses, rather than deleting it under the transfer (whose save would then fail)."""
    if name is None:
        return None
    cursor.execute(
        f"SELECT id FROM facilities_grade WHERE facility_id = %s AND name = %s {_key_share()}",  # noqa: S608
        [facility_id, name],
    )
    row = cursor.fetchone()
    return row[0] if row is not None else None


def _key_share() -> str:
    # The lock a foreign-key check takes: it waits on a grade being deleted, never on another
    # inmate being given the same grade.
    return "FOR KEY SHARE" if connection.vendor == "postgresql" else ""


def register_kiosk_device(*, facility: Facility, name: str) -> tuple[KioskDevice, str]:
    """Issue a kiosk key. The raw key is returned once and never stored."""
    raw_key = f"kiosk_{secrets.token_urlsafe(32)}"
    device = KioskDevice.objects.create(
        facility=facility, name=name, key_prefix=raw_key[:12], key_hash=hash_device_key(raw_key)
    )
    return device, raw_key


def revoke_kiosk_device(*, device_id: int, staff_id: int | None = None) -> None:
    """The kiosk's key stops working at once. One conditional ``UPDATE`` (no model signal
    sees it), so the audit entry is written here: who revoked it (``staff_id``, else the
    person of the request), the facility, and when."""
    now = timezone.now()
    with transaction.atomic():
        revoked = KioskDevice.objects.filter(pk=device_id, is_active=True).update(
            is_active=False, revoked_at=now
        )
        if revoked:
            device = KioskDevice.objects.get(pk=device_id)
            audit.record(
                model=KioskDevice,
                object_pk=device.pk,
                object_repr=str(device),
                changes={"is_active": [True, False], "revoked_at": [None, now.isoformat()]},
                facility_id=device.facility_id,
                actor_id=staff_id,
            )
