"""Placing an order from a kiosk, idempotent per kiosk and key: the first answer (an order,
or a refusal kept as a ``RefusedOrder``) is what every replay of the key gets back."""

import datetime as dt
from collections.abc import Sequence

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from commissary import errors
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts
from ledger.services.posting import execute

from ..models import Order, RefusedOrder
from .checks import checked_key, checked_lines
from .placing import _place

# Refusals a kiosk gets back, as they were, when it replays the key (a body that fails
# validation, 400, is not kept: it was never taken up).
_KEPT_REFUSALS = (
    errors.InsufficientFunds,
    errors.SpendingLimitExceeded,
    errors.OutOfStock,
    errors.ProductRestricted,
    errors.AccountFrozen,
    errors.InmateReleased,
    errors.ProductNotFound,
    errors.InmateNotFound,
)


def _answer_by_key(scope: str, idempotency_key: str, request_hash: str) -> Order | None:
    """The first answer under this key: its order, or its refusal raised again as it was
    (``RepeatedRefusal``); None when the key is unused. A different request under the same key
    is refused with IdempotencyConflict."""
    with connection.cursor() as cursor:
        execute(
            cursor,
            "SELECT id, request_hash, NULL, NULL FROM catalog_order "
            "WHERE idempotency_scope = %s AND idempotency_key = %s "
            "UNION ALL SELECT NULL, request_hash, code, message FROM catalog_refusedorder "
            "WHERE idempotency_scope = %s AND idempotency_key = %s",
            [scope, idempotency_key, scope, idempotency_key],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    order_id, first_hash, code, message = row
    if first_hash != request_hash:
        raise errors.IdempotencyConflict()
    if order_id is None:
        raise errors.RepeatedRefusal(code, message)
    return Order.objects.get(pk=order_id)


def place_order(
    *,
    inmate_id: int,
    device_id: int,
    items: Sequence,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Order:
    """Place an order from a kiosk: server prices only, stock checked and taken, the grade's
    spending limit checked for its week or month, the total debited from spendable money.

    Idempotent per kiosk: the same key with the same inmate and items returns the first order
    (its stored answer in ``placed_response``), or raises its first refusal again (kept as a
    ``RefusedOrder``); the same key with anything else raises IdempotencyConflict. Any refusal
    raises one DomainError and changes nothing but that record.
    """
    lines = checked_lines(items)
    idempotency_key = checked_key(idempotency_key)
    scope = ledger_services.kiosk_scope(device_id)
    request_hash = ledger_services.request_hash_of(
        "place_order",
        inmate_id=inmate_id,
        items=[[line.product_id, line.quantity] for line in lines],
    )
    now = now or timezone.now()

    try:
        with transaction.atomic():
            return _place(
                inmate_id=inmate_id,
                device_id=device_id,
                lines=lines,
                scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                now=now,
            )
    except (errors.DomainError, IntegrityError) as failure:
        # A replay fails (on a unique key, or earlier: the stock or money it would need again
        # may be gone by now, or its key holds a refusal) and then finds the first answer. The
        # same key racing its first request waits on the unique index, fails, and finds the
        # committed first answer the same way. Only when there is none is the failure real.
        earlier = _answer_by_key(scope, idempotency_key, request_hash)
        if earlier is not None:
            return earlier
        if not isinstance(failure, _KEPT_REFUSALS):
            raise
        kept = _keep_refusal(
            failure,
            inmate_id=inmate_id,
            device_id=device_id,
            scope=scope,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            now=now,
        )
        if kept is not None:
            return kept
        raise


def _keep_refusal(
    refusal: errors.DomainError,
    *,
    inmate_id: int,
    device_id: int,
    scope: str,
    idempotency_key: str,
    request_hash: str,
    now: dt.datetime,
) -> Order | None:
    """Keep a refusal under its key, so a replay gets it back. Under the inmate's account lock,
    which every order of the inmate is written under: a replay of the key that placed its order
    meanwhile is found (and returned instead), and a replay still to come finds the refusal."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        earlier = _answer_by_key(scope, idempotency_key, request_hash)
        if earlier is not None:
            return earlier
        try:
            with transaction.atomic():
                RefusedOrder.objects.create(
                    facility_id=locked.facility_id,
                    inmate_id=inmate_id,
                    device_id=device_id,
                    idempotency_scope=scope,
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    code=refusal.code,
                    message=str(refusal.message),
                    created_at=now,
                )
        except IntegrityError:
            # The same kiosk sent the key for another inmate at the same moment: its answer
            # holds the key (and this request conflicts with it).
            _answer_by_key(scope, idempotency_key, request_hash)
    return None


# Whether the key already holds a refusal (parameters 1 and 2), whether the kiosk (3) is an
# active kiosk of the inmate's facility, the grade's limit at the order's instant (4: its
