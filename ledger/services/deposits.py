"""Family deposits, two-phase like a card authorisation: ``reserve_deposit`` holds room under
both caps (invariants 3 and 4), then ``credit_deposit`` turns the reservation into money
received, or ``release_deposit`` gives the room back.

About 450 lines: the two phases and every way a reservation ends (credit, release, refund of
a held deposit) share the reservation's rows and the lock order, so they stay in one module.
"""

import datetime as dt
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors
from commissary.db import replan_when_doubled
from commissary.money import format_fen
from facilities.models import deposit_fee_fen, local_month

from ..locks import lock_inmate_accounts
from ..models import Deposit, Transaction
from .posting import (
    SYSTEM_SCOPE,
    checked_amount,
    checked_key,
    checked_scope,
    depositor_scope,
    ensure_open,
    execute,
    from_returned_row,
    post,
    request_hash_of,
    returning_columns,
    run_idempotent,
)


def ensure_period(cursor, *, locked, month) -> None:
    """Open the inmate's period for ``month`` if it is not open yet, under the facility's
    monthly cap (the month is part of the key: no scheduled task has to run first)."""
    execute(
        cursor,
        "INSERT INTO ledger_monthlyperiod (inmate_id, facility_id, month, received_fen, "
        "reserved_fen, cap_fen) VALUES (%s, %s, %s, 0, 0, %s) "
        "ON CONFLICT (inmate_id, month) DO NOTHING",
        [locked.inmate_id, locked.facility_id, month, locked.monthly_cap_fen],
    )


DEPOSIT_RESERVATION_TTL = dt.timedelta(minutes=settings.DEPOSIT_RESERVATION_MINUTES)
_DEPOSIT_COLUMNS = returning_columns(Deposit)


def reserve_deposit(
    *,
    inmate_id: int,
    amount_fen: int,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    provider: str = "sandbox",
    depositor_id: int | None = None,
    now: dt.datetime | None = None,
) -> Deposit:
    """Create a deposit awaiting payment and reserve its room under both caps.

    Invariants 3 and 4: the reservation counts as pending incoming money against the balance
    cap and as reserved money in the facility-local month's period, so two deposits in flight
    can never together break a cap. About 110 lines: every refusal (closed or frozen, no
    clearing account, the balance cap, the deposit limits, the monthly cap by its conditional
    update) is decided under the inmate's lock, in order, beside the statements that reserve
    the room; a replay of the key is answered with the first deposit.
    """
    amount_fen = checked_amount(amount_fen)
    scope = checked_scope(idempotency_scope, actor_id=depositor_id, actor_scope=depositor_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "reserve_deposit",
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        provider=provider,
        depositor_id=depositor_id,
    )
    created: dict = {}

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id, provider=provider)
            ensure_open(locked, spending=True)
            if locked.clearing_id is None:
                raise errors.ValidationFailed(
                    _("Unknown payment provider %(provider)s.") % {"provider": provider}
                )
            if amount_fen > locked.room_under_balance_cap_fen:
                raise errors.BalanceCapExceeded(
                    _("The inmate can receive at most %(amount)s before reaching the balance cap.")
                    % {"amount": format_fen(locked.room_under_balance_cap_fen, locked.currency)}
                )
            month = local_month(now, locked.timezone)
            _check_deposit_limits(cursor, locked=locked, month=month, amount_fen=amount_fen)
            ensure_period(cursor, locked=locked, month=month)
            # The cap check and the reservation are one conditional UPDATE.
            execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen + %s "
                "WHERE inmate_id = %s AND month = %s "
                "AND received_fen + reserved_fen + %s <= cap_fen RETURNING id",
                [amount_fen, locked.inmate_id, month, amount_fen],
            )
            period = cursor.fetchone()
            if period is None:
                raise errors.MonthlyCapExceeded()
            execute(
                cursor,
                "UPDATE ledger_account SET pending_fen = pending_fen + %s WHERE id = %s",
                [amount_fen, locked.spendable_id],
            )
            created.update(
                reference=uuid.uuid4(),
                inmate_id=locked.inmate_id,
                facility_id=locked.facility_id,
                period_id=period[0],
                depositor_id=depositor_id,
                amount_fen=amount_fen,
                fee_fen=deposit_fee_fen(
                    amount_fen,
                    fixed_fen=locked.deposit_fee_fixed_fen,
                    rate_bp=locked.deposit_fee_rate_bp,
                ),
                currency=locked.currency,
                provider=provider,
                provider_reference="",
                status=Deposit.Status.CREATED,
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                created_at=now,
                expires_at=now + DEPOSIT_RESERVATION_TTL,
                resolved_at=None,
            )
            columns = list(created)
            execute(
                cursor,
                f"INSERT INTO ledger_deposit ({', '.join(columns)}) "  # noqa: S608 - column names are this function's own keys; values bound
                f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id",
                [created[column] for column in columns],
            )
            created["id"] = cursor.fetchone()[0]
            replan_when_doubled(created["id"], ("ledger_deposit", "ledger_monthlyperiod"))
            return created["id"]

    deposit_id = run_idempotent(
        attempt,
        lookup=Deposit.lookup(scope, idempotency_key),
        request_hash=request_hash,
    )
    if created.get("id") != deposit_id:  # a replay: the first request's deposit
        return Deposit.objects.get(pk=deposit_id)
    # The fresh deposit, built from exactly what was written: saves a read on the hot path.
    deposit = Deposit(**created)
    deposit._state.adding = False
    deposit._state.db = connection.alias
    return deposit


def _check_deposit_limits(cursor, *, locked, month: dt.date, amount_fen: int) -> None:
    """The facility's optional limits on single deposits and on deposits a month, checked
    under the inmate's lock, so two deposits in flight cannot together pass the count.
    A deposit counts while awaiting payment and once credited; failed, expired and refunded
    ones do not."""
    execute(
        cursor,
        "SELECT f.max_deposit_fen, f.max_deposits_per_month, "
        "(SELECT COUNT(*) FROM ledger_deposit d JOIN ledger_monthlyperiod p ON p.id = d.period_id "
        " WHERE p.inmate_id = %s AND p.month = %s AND d.status IN ('created', 'held', 'credited')) "
        "FROM facilities_facility f WHERE f.id = %s",
        [locked.inmate_id, month, locked.facility_id],
    )
    max_deposit_fen, max_per_month, this_month = cursor.fetchone()
    if max_deposit_fen is not None and amount_fen > max_deposit_fen:
        raise errors.DepositOverSingleLimit(
            _("One deposit may be at most %(amount)s at this facility.")
            % {"amount": format_fen(max_deposit_fen, locked.currency)}
        )
    if max_per_month is not None and this_month >= max_per_month:
        raise errors.MonthlyDepositCountExceeded(
            _("The inmate may receive at most %(count)d deposits a month.")
            % {"count": max_per_month}
        )


def credit_deposit(
    *,
    deposit_id: int,
    provider_reference: str = "",
    now: dt.datetime | None = None,
    from_held: bool = False,
) -> Deposit:
    """Credit a paid deposit: clearing -> inmate spendable, fee -> fees (the fee is paid on
    top by the depositor and never counts against a cap). The reservation turns into money
    received. Idempotent: crediting a credited deposit returns it unchanged.

    Four statements on PostgreSQL (``tests/ledger/test_hot_path.py`` counts them): the lock
    (which finds the deposit's inmate and its provider's clearing account itself), the
    deposit's status update, whose ``RETURNING`` row is the credited deposit returned, the
    period update, and ``post``'s one statement for the transaction, its entries and the
    balances.

    ``from_held`` credits a deposit held for review (monitoring's accept) instead of one
    awaiting payment; a held deposit is never credited otherwise."""
    now = now or timezone.now()
    from_status = Deposit.Status.HELD if from_held else Deposit.Status.CREATED
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            locked = lock_inmate_accounts(cursor, by="deposit", key=deposit_id)
        except errors.InmateNotFound:
            raise errors.DepositNotFound() from None
        execute(
            cursor,
            "UPDATE ledger_deposit SET status = 'credited', resolved_at = %s, "  # noqa: S608 - the Deposit model's column names; values are bound
            "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
            f"WHERE id = %s AND status = %s RETURNING {_DEPOSIT_COLUMNS}",
            [now, provider_reference, provider_reference, deposit_id, from_status],
        )
        row = cursor.fetchone()
        if row is not None:
            credited = from_returned_row(Deposit, row)
            execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s, "
                "received_fen = received_fen + %s WHERE id = %s",
                [credited.amount_fen, credited.amount_fen, credited.period_id],
            )
            post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.DEPOSIT,
                legs=[
                    (locked.clearing_id, -(credited.amount_fen + credited.fee_fen)),
                    (locked.spendable_id, credited.amount_fen),
                    (locked.fees_id, credited.fee_fen),
                ],
                pending_delta_fen=-credited.amount_fen,
                idempotency_scope=SYSTEM_SCOPE,
                idempotency_key=f"deposit-credit:{deposit_id}",
                request_hash=request_hash_of("credit_deposit", deposit_id=deposit_id),
                deposit_id=deposit_id,
                now=now,
            )
            return credited
    # Not awaiting payment: a replay returns the credited deposit, anything else is refused.
    earlier = Deposit.objects.get(pk=deposit_id)
    if earlier.status != Deposit.Status.CREDITED:
        raise errors.DepositNotPending(
            _("The deposit is %(status)s.") % {"status": earlier.get_status_display().lower()}
        )
    return earlier


def release_deposit(
    *, deposit_id: int, status: str = Deposit.Status.FAILED, now: dt.datetime | None = None
) -> Deposit:
    """Mark an unpaid deposit failed or expired and give its room under both caps back.
    Idempotent for the same outcome."""
    if status not in (Deposit.Status.FAILED, Deposit.Status.EXPIRED):
        raise errors.ValidationFailed(_("A deposit is released as failed or expired."))
    return _end_reservation(
        deposit_id=deposit_id,
        from_status=Deposit.Status.CREATED,
        to_status=status,
        now=now or timezone.now(),
    )


def _end_reservation(*, deposit_id: int, from_status: str, to_status: str, now) -> Deposit:
    """Move a deposit that holds a reservation (awaiting payment, or held for review) to an
    end state that credits nothing, giving its room under both caps back, under the inmate's
    lock. Idempotent for the same end state; any other state is refused."""
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            locked = lock_inmate_accounts(cursor, by="deposit", key=deposit_id)
        except errors.InmateNotFound:
            raise errors.DepositNotFound() from None
        execute(
            cursor,
            "UPDATE ledger_deposit SET status = %s, resolved_at = %s "
            "WHERE id = %s AND status = %s RETURNING amount_fen, period_id",
            [to_status, now, deposit_id, from_status],
        )
        row = cursor.fetchone()
        if row is not None:
            amount_fen, period_id = row
            execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s WHERE id = %s",
                [amount_fen, period_id],
            )
            execute(
                cursor,
                "UPDATE ledger_account SET pending_fen = pending_fen - %s WHERE id = %s",
                [amount_fen, locked.spendable_id],
            )
    ended = Deposit.objects.get(pk=deposit_id)
    if ended.status != to_status:
        raise errors.DepositNotPending(
            _("The deposit is %(status)s.") % {"status": ended.get_status_display().lower()}
        )
    return ended


def settle_late_deposit(
    *,
    deposit_id: int,
    provider_reference: str = "",
    now: dt.datetime | None = None,
    hold: bool = False,
) -> Deposit:
    """A payment settled after its deposit was released (expired or failed): credit it if it
    still fits, else mark it refunded, so the provider returns the money.

    Under the inmate's lock the deposit is reserved again in the current facility-local month,
    against both caps and the facility's deposit limits, exactly as a new deposit would be, and
    credited in the same transaction (its period becomes the current one). If any of that
    refuses, or the account is frozen or closed, the deposit becomes ``refunded`` and nothing
    moves. A deposit still awaiting payment is credited as usual; a credited, held or refunded
    one is returned unchanged (idempotent).

    With ``hold`` (a monitoring rule fired on the payment) nothing is credited: a deposit
    awaiting payment becomes ``held`` with its reservation kept, and a late one is reserved
    again (not received) and held, so the caps count it while staff review it."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            provider = Deposit.objects.values_list("provider", flat=True).get(pk=deposit_id)
        except Deposit.DoesNotExist:
            raise errors.DepositNotFound() from None
        locked = lock_inmate_accounts(cursor, by="deposit", key=deposit_id, provider=provider)
        execute(
            cursor,
            "SELECT status, amount_fen, fee_fen FROM ledger_deposit WHERE id = %s",
            [deposit_id],
        )
        status, amount_fen, fee_fen = cursor.fetchone()
        if status == Deposit.Status.CREATED and hold:
            _mark_held(cursor, deposit_id=deposit_id, provider_reference=provider_reference)
        elif status in (Deposit.Status.EXPIRED, Deposit.Status.FAILED):
            period_id = _reserve_again(
                cursor, locked=locked, amount_fen=amount_fen, now=now, as_reservation=hold
            )
            if period_id is not None and hold:
                execute(
                    cursor,
                    "UPDATE ledger_deposit SET status = 'held', resolved_at = NULL, "
                    "period_id = %s, "
                    "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
                    "WHERE id = %s",
                    [period_id, provider_reference, provider_reference, deposit_id],
                )
                execute(
                    cursor,
                    "UPDATE ledger_account SET pending_fen = pending_fen + %s WHERE id = %s",
                    [amount_fen, locked.spendable_id],
                )
            elif period_id is None:
                execute(
                    cursor,
                    "UPDATE ledger_deposit SET status = 'refunded', resolved_at = %s, "
                    "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
                    "WHERE id = %s",
                    [now, provider_reference, provider_reference, deposit_id],
                )
            else:
                execute(
                    cursor,
                    "UPDATE ledger_deposit SET status = 'credited', resolved_at = %s, "
                    "period_id = %s, "
                    "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
                    "WHERE id = %s",
                    [now, period_id, provider_reference, provider_reference, deposit_id],
                )
                post(
                    cursor,
                    locked=locked,
                    kind=Transaction.Kind.DEPOSIT,
                    legs=[
                        (locked.clearing_id, -(amount_fen + fee_fen)),
                        (locked.spendable_id, amount_fen),
                        (locked.fees_id, fee_fen),
                    ],
                    idempotency_scope=SYSTEM_SCOPE,
                    idempotency_key=f"deposit-credit:{deposit_id}",
                    request_hash=request_hash_of("credit_deposit", deposit_id=deposit_id),
                    deposit_id=deposit_id,
                    now=now,
                )
    if status == Deposit.Status.CREATED and not hold:
        return credit_deposit(deposit_id=deposit_id, provider_reference=provider_reference, now=now)
    return Deposit.objects.get(pk=deposit_id)


def _mark_held(cursor, *, deposit_id: int, provider_reference: str) -> None:
    execute(
        cursor,
        "UPDATE ledger_deposit SET status = 'held', "
        "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
        "WHERE id = %s AND status = 'created'",
        [provider_reference, provider_reference, deposit_id],
    )


def refund_held_deposit(*, deposit_id: int, now: dt.datetime | None = None) -> Deposit:
    """A held deposit that staff rejected (or nobody decided in time): it becomes ``refunded``
    and its room under both caps is given back; nothing was ever credited. The caller records
    the provider refund in the same transaction (``payments``' outbox). Idempotent: a refunded
    deposit is returned unchanged; any other state is refused."""
    return _end_reservation(
        deposit_id=deposit_id,
        from_status=Deposit.Status.HELD,
        to_status=Deposit.Status.REFUNDED,
        now=now or timezone.now(),
    )


def _reserve_again(
    cursor, *, locked, amount_fen: int, now: dt.datetime, as_reservation: bool = False
) -> int | None:
    """Count a late payment as received this month (or, ``as_reservation``, as reserved while
    it is held for review) if it fits under both caps and the facility's limits: the id of the
    period it now belongs to, or None if it does not fit."""
    if locked.is_closed or locked.is_frozen or amount_fen > locked.room_under_balance_cap_fen:
        return None
    month = local_month(now, locked.timezone)
    try:
        _check_deposit_limits(cursor, locked=locked, month=month, amount_fen=amount_fen)
    except errors.DomainError:
        return None
    ensure_period(cursor, locked=locked, month=month)
    column = "reserved_fen" if as_reservation else "received_fen"
    execute(
        cursor,
        f"UPDATE ledger_monthlyperiod SET {column} = {column} + %s "  # noqa: S608 - one of two column names; values are bound
        "WHERE inmate_id = %s AND month = %s "
        "AND received_fen + reserved_fen + %s <= cap_fen RETURNING id",
        [amount_fen, locked.inmate_id, month, amount_fen],
    )
    period = cursor.fetchone()
    return period[0] if period else None


def detach_depositor(*, depositor_id: int) -> int:
    """A depositor closed their account: their deposits stay, as the law requires, but no
    longer point at them. Returns how many were detached. One still awaiting payment goes on
    to be credited or released as usual."""
    with transaction.atomic():
        return Deposit.objects.filter(depositor_id=depositor_id).update(depositor=None)
