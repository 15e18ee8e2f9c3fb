"""The provider outbox: every call to a payment provider that follows a money decision (a
refund, closing an order, a status query) is written as a ``ProviderCall`` row in the deciding
transaction and made by a worker after that transaction commits.

Why: a provider call is HTTP with timeouts of 10-15 s. Made inside the transaction that decided
it, it would hold the inmate's account rows locked for as long as the provider takes, stalling
every deposit, purchase and callback of that inmate (and, with a slow provider, the database's
connections). So the decision commits first; the call runs with no transaction open, and its
outcome is written in a short transaction of its own on the outbox row alone.

- ``request_refund`` (and ``request_query``) write the row and queue ``make_provider_call``
  once the transaction commits; a rolled-back decision leaves no row and sends nothing.
- ``make_provider_call`` claims the row (a short lock on it alone, counting the attempt and
  setting when the next one is due), makes the call, and records success or the error.
- A failed call is retried by the sweep (``retry_due_provider_calls``, every minute) when its
  next attempt is due: after 1, 2, 4 … minutes, at most an hour apart. After
  ``MAX_ATTEMPTS`` it stops and waits for staff (``State.GAVE_UP``), who see it in the admin
  and can retry it now (``retry_provider_call_now``).
- The request number is fixed when the row is written, so a call made twice (a lost answer,
  a sweep racing the first task) is one refund at the provider: Alipay refunds an
  ``out_request_no`` once, WeChat Pay an ``out_refund_no`` once.
"""

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from accounts import audit
from commissary import errors

from ..models import Payment, ProviderCall
from ..providers import get_provider
from . import queueing

logger = logging.getLogger(__name__)

FIRST_RETRY_AFTER = dt.timedelta(minutes=1)
LONGEST_WAIT = dt.timedelta(hours=1)
# 1 + 2 + 4 + … + 32 minutes, then hourly: about half a day of tries before staff are asked.
MAX_ATTEMPTS = 16


def retry_wait(attempts: int) -> dt.timedelta:
    """How long after its ``attempts``-th failed try a call is tried again."""
    return min(FIRST_RETRY_AFTER * 2 ** max(attempts - 1, 0), LONGEST_WAIT)


def request_refund(*, payment_id: int, reason: str, now: dt.datetime | None = None):
    """Return a payment's whole amount (amount plus fee) to the payer, at the provider, after
    the calling transaction commits. Call it in the transaction that decides the refund: the
    row is written there, so the refund is recorded exactly when the decision is. Idempotent:
    a payment is refunded once (one refund row per payment, one request number)."""
    return _request(payment_id=payment_id, kind=ProviderCall.Kind.REFUND, reason=reason, now=now)


def request_query(*, payment_id: int, reason: str = "", now: dt.datetime | None = None):
    """Ask the provider about a payment after commit and apply its answer (as the poll does)."""
    return _request(payment_id=payment_id, kind=ProviderCall.Kind.QUERY, reason=reason, now=now)


def request_close(*, payment_id: int, reason: str = "", now: dt.datetime | None = None):
    """Close the payment's order at the provider after commit, so it can no longer be paid."""
    return _request(payment_id=payment_id, kind=ProviderCall.Kind.CLOSE, reason=reason, now=now)


def _request(*, payment_id: int, kind: str, reason: str, now: dt.datetime | None):
    now = now or timezone.now()
    with transaction.atomic():
        payment = Payment.objects.select_related("deposit").get(pk=payment_id)
        provider = get_provider(payment.provider)
        request_number = provider.refund_number(payment) if kind == ProviderCall.Kind.REFUND else ""
        call, created = ProviderCall.objects.get_or_create(
            payment_id=payment_id,
            kind=kind,
            defaults={
                "facility_id": payment.deposit.facility_id,
                "request_number": request_number,
                "reason": reason[:200],
                # The task queued at commit makes the first try at once (``attempts`` is 0);
                # this is when the sweep takes over if that task never runs.
                "next_attempt_at": now + FIRST_RETRY_AFTER,
                "created_at": now,
            },
        )
        if created:
            transaction.on_commit(lambda: _queue(call.pk))
    return call


def make_provider_call(*, call_id: int, now: dt.datetime | None = None) -> ProviderCall | None:
    """Make one outbox call if it is due: claim it, call the provider with no transaction
    open, record the outcome. Returns the row afterwards, or None when there was nothing to do
    (done, given up, not due, or being made by another worker right now)."""
    now = now or timezone.now()
    call = _claim(call_id, now=now)
    if call is None:
        return None
    try:
        _perform(call, now=now)
    except errors.DomainError as failure:
        gave_up = call.attempts >= MAX_ATTEMPTS
        ProviderCall.objects.filter(pk=call.pk, state=ProviderCall.State.PENDING).update(
            last_error=str(failure.message)[:2000],
            state=ProviderCall.State.GAVE_UP if gave_up else ProviderCall.State.PENDING,
        )
        logger.warning(
            "provider %s %s of payment %s failed (attempt %s%s): %s",
            call.payment.provider,
            call.kind,
            call.payment_id,
            call.attempts,
            ", giving up until staff retry it" if gave_up else "",
            failure.message,
        )
    else:
        ProviderCall.objects.filter(pk=call.pk).update(
            state=ProviderCall.State.DONE, done_at=now, last_error=""
        )
    return ProviderCall.objects.get(pk=call.pk)


def _claim(call_id: int, *, now: dt.datetime) -> ProviderCall | None:
    """Count the attempt and push the next one out, in a short transaction on this row alone
    (no inmate's row is locked here): a second worker given the same call skips it, and a
    worker that dies mid-call leaves a row the sweep retries when its next attempt is due."""
    with transaction.atomic():
        call = (
            ProviderCall.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
            .select_related("payment", "payment__deposit")
            .filter(pk=call_id, state=ProviderCall.State.PENDING)
            .first()
        )
        if call is None or (call.attempts > 0 and call.next_attempt_at > now):
            return None
        call.attempts += 1
        call.next_attempt_at = now + retry_wait(call.attempts)
        call.save(update_fields=["attempts", "next_attempt_at"])
    return call


def _perform(call: ProviderCall, *, now: dt.datetime) -> None:
    provider = get_provider(call.payment.provider)
    if call.kind == ProviderCall.Kind.REFUND:
        provider.refund(call.payment, request_number=call.request_number, reason=call.reason)
    elif call.kind == ProviderCall.Kind.CLOSE:
        provider.close_order(call.payment)
    else:
        answer = provider.query_status(call.payment)
        _status_appliers[0](
            payment_id=call.payment_id, status=answer.status, payer=answer.payer, now=now
        )


# How a provider's answer about a payment is applied: ``deposits.apply_provider_status``, which
# registers itself here (it also requests refunds through this module, so this module cannot
# import it).
_status_appliers: list = []


def applies_provider_status(function):
    """Register the service that applies a provider's answer (a query's) to a payment."""
    _status_appliers[:] = [function]
    return function


def retry_due_provider_calls(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """The sweep (every minute): queue every pending call whose next attempt is due, oldest
    first, at most ``limit`` a run. Returns how many it queued."""
    now = now or timezone.now()
    due = list(
        ProviderCall.objects.filter(state=ProviderCall.State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    queued = sum(_queue(call_id) for call_id in due)
    if due:
        logger.info("provider call sweep: %s due, %s queued", len(due), queued)
    return queued


def retry_provider_call_now(
    *, call_id: int, now: dt.datetime | None = None, staff_id: int | None = None
) -> ProviderCall:
    """Staff's "retry now": a pending or given-up call is due at once and queued after commit.
    A call already done is left alone. The ``UPDATE`` passes no model signal, so the audit
    entry (who, the facility, the state and due time before and after) is written here."""
    now = now or timezone.now()
    with transaction.atomic():
        before = (
            ProviderCall.objects.select_for_update()
            .filter(pk=call_id)
            .values("state", "next_attempt_at")
            .first()
        )
        updated = ProviderCall.objects.filter(
            pk=call_id,
            state__in=(ProviderCall.State.PENDING, ProviderCall.State.GAVE_UP),
        ).update(state=ProviderCall.State.PENDING, next_attempt_at=now)
        if updated:
            call = ProviderCall.objects.get(pk=call_id)
            audit.record(
                model=ProviderCall,
                object_pk=call.pk,
                object_repr=f"{call.get_kind_display()} {call.request_number}",
                changes={
                    "state": [before["state"], call.state],
                    "next_attempt_at": [before["next_attempt_at"].isoformat(), now.isoformat()],
                },
                facility_id=call.facility_id,
                actor_id=staff_id,
            )
            transaction.on_commit(lambda: _queue(call_id))
    return ProviderCall.objects.get(pk=call_id)


def _queue(call_id: int) -> bool:
    try:
        queueing.queue(queueing.MAKE_PROVIDER_CALL, call_id=call_id)
    except Exception:  # the decision is committed; the sweep queues the call again later
        logger.exception("provider call %s was not queued", call_id)
        return False
    return True
