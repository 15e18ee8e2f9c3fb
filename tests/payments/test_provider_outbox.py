"""The provider outbox: a refund decided under the inmate's lock is written in that transaction
and made by a worker after the commit, never while the inmate's accounts are locked; it is
made once at the provider however often it runs (its request number is fixed), failures are
recorded and retried with backoff by the sweep, and a call that keeps failing waits for staff,
who see it (scoped to their facilities) and may retry it now."""

import datetime as dt
import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import FacilityAssignment
from ledger import batch
from ledger.models import Account, Deposit
from payments import services, tasks
from payments.models import Payment, ProviderCall, SandboxCharge
from payments.providers.base import ProviderError
from payments.providers.sandbox import SandboxProvider
from payments.services import outbox, queueing
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.ledger.helpers import key

from .helpers import approved_link, callback_body, depositor, post_callback


def started(amount_fen=60_000, *, inmate=None) -> Payment:
    user = depositor()
    link = approved_link(user, inmate or InmateFactory())
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key()
    )
    return Payment.objects.get(deposit=reserved)


def late_payment_that_no_longer_fits() -> Payment:
    """A 600-yuan payment whose reservation expired while the month filled up to 500 yuan of
    room: when it settles, it must be refunded."""
    inmate = InmateFactory()
    payment = started(60_000, inmate=inmate)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    credited_deposit(inmate, 50_000)
    return payment


def _inmate_accounts_locked_elsewhere(inmate_id: int) -> bool:
    """Whether another connection holds the inmate's account rows locked, asked from a thread
    of our own (its own connection) with NOWAIT."""
    answer = {}

    def probe():
        try:
            with transaction.atomic():
                list(
                    Account.objects.select_for_update(nowait=True)
                    .filter(inmate_id=inmate_id)
                    .values_list("pk", flat=True)
                )
            answer["locked"] = False
        except Exception:
            answer["locked"] = True
        finally:
            connections.close_all()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return answer["locked"]


@pytest.mark.django_db(transaction=True)
def test_the_refund_is_made_after_commit_with_no_inmate_lock_held(client, monkeypatch):
    payment = late_payment_that_no_longer_fits()
    inmate_id = payment.deposit.inmate_id
    seen = []

    def refund(self, payment, *, request_number=None, reason=""):
        # A provider's refund is HTTP with 10-15 s timeouts: refuse to be called inside a
        # transaction, above all one holding the inmate's accounts.
        if connection.in_atomic_block or _inmate_accounts_locked_elsewhere(inmate_id):
            raise AssertionError("a provider was called while the inmate's accounts were locked")
        seen.append(request_number)
        SandboxCharge.objects.filter(reference=payment.provider_reference).update(
            status=SandboxCharge.Status.REFUNDED
        )

    monkeypatch.setattr(SandboxProvider, "refund", refund)
    # A worker that takes the message at once, as soon as the decision has committed.
    monkeypatch.setattr(
        queueing, "queue", lambda name, **kwargs: tasks.make_provider_call.apply(kwargs=kwargs)
    )

    for _ in range(2):
        assert post_callback(client, callback_body(payment)).status_code == 200

    assert seen == [f"{payment.provider_reference}-refund"]
    call = ProviderCall.objects.get(payment=payment)
    assert (call.state, call.attempts, call.kind) == ("done", 1, "refund")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.REFUNDED
    assert Account.objects.get(inmate_id=inmate_id, kind="spendable").balance_fen == 50_000


@pytest.mark.django_db
def test_a_rolled_back_decision_leaves_no_call_and_queues_nothing(
    django_capture_on_commit_callbacks, queued_provider_calls
):
    payment = started(10_000)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.request_refund(payment_id=payment.pk, reason="rejected")
        raise RuntimeError("the deciding transaction fails after the refund was recorded")
    assert not ProviderCall.objects.exists()
    assert queued_provider_calls == []


@pytest.mark.django_db
def test_request_refund_is_one_row_per_payment_with_a_fixed_number(
    django_capture_on_commit_callbacks, queued_provider_calls
):
    payment = started(10_000)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.request_refund(payment_id=payment.pk, reason="rejected")
        again = services.request_refund(payment_id=payment.pk, reason="rejected again")
    assert first.pk == again.pk
    assert first.request_number == f"{payment.provider_reference}-refund"
    assert first.facility_id == payment.deposit.facility_id
    assert queued_provider_calls == [{"call_id": first.pk}]


@pytest.mark.django_db
def test_a_call_that_keeps_failing_backs_off_then_gives_up_for_staff(monkeypatch):
    payment = started(10_000)
    with transaction.atomic():
        call = services.request_refund(payment_id=payment.pk, reason="rejected")

    def refuse(self, payment, **kwargs):
        raise ProviderError("the gateway is down")

    monkeypatch.setattr(SandboxProvider, "refund", refuse)
    now = timezone.now()
    waits = []
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        made = services.make_provider_call(call_id=call.pk, now=now)
        assert made.attempts == attempt
        assert made.last_error == "the gateway is down"
        # Not due again before its wait: a second run in the meantime does nothing.
        assert services.make_provider_call(call_id=call.pk, now=now) is None
        waits.append(made.next_attempt_at - now)
        now = made.next_attempt_at
    assert made.state == ProviderCall.State.GAVE_UP
    assert waits[:4] == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert max(waits) == dt.timedelta(hours=1)
    # Given up: the sweep no longer queues it, ever.
    assert services.retry_due_provider_calls(now=now + dt.timedelta(days=1)) == 0


@pytest.mark.django_db
def test_a_call_is_made_once_when_two_workers_run_it(django_capture_on_commit_callbacks):
    payment = started(10_000)
    with transaction.atomic():
        call = services.request_refund(payment_id=payment.pk, reason="rejected")
    assert services.make_provider_call(call_id=call.pk).state == ProviderCall.State.DONE
    assert services.make_provider_call(call_id=call.pk) is None
    assert ProviderCall.objects.get(pk=call.pk).attempts == 1


@pytest.mark.django_db
def test_the_sweep_is_a_registered_task_scheduled_every_minute():
    from django_celery_beat.models import PeriodicTask

    from ledger.schedules import ensure_schedules

    ensure_schedules()
    sweep = PeriodicTask.objects.get(task="payments.tasks.retry_provider_calls")
    assert (sweep.interval.every, sweep.interval.period) == (1, "minutes")
    assert tasks.retry_provider_calls.name == "payments.tasks.retry_provider_calls"
    assert tasks.make_provider_call.name == queueing.MAKE_PROVIDER_CALL
    assert tasks.send_receipt.name == queueing.SEND_RECEIPT
    assert tasks.make_provider_call.acks_late


def _given_up_call(facility) -> ProviderCall:
    payment = started(10_000, inmate=InmateFactory(facility=facility))
    with transaction.atomic():
        call = services.request_refund(payment_id=payment.pk, reason="rejected")
    ProviderCall.objects.filter(pk=call.pk).update(
        state=ProviderCall.State.GAVE_UP, attempts=outbox.MAX_ATTEMPTS, last_error="refused"
    )
    return call


def _staff(facility, *permissions):
    user = StaffFactory()
    FacilityAssignment.objects.create(user=user, facility=facility)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="payments", codename__in=["view_providercall", *permissions]
        )
    )
    return user


@pytest.mark.django_db
def test_staff_see_their_facilities_failing_calls_read_only(client):
    mine, other = FacilityFactory(), FacilityFactory()
    shown, hidden = _given_up_call(mine), _given_up_call(other)
    client.force_login(_staff(mine))
    page = client.get("/admin/payments/providercall/?outcome=gave_up")
    assert page.status_code == 200
    assert shown.request_number in page.content.decode()
    assert hidden.request_number not in page.content.decode()
    assert client.get(f"/admin/payments/providercall/{hidden.pk}/change/").status_code == 404
    detail = client.get(f"/admin/payments/providercall/{shown.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    # Without the retry permission, the action is not offered and cannot be posted.
    assert "retry_now" not in page.content.decode()
    client.post(
        "/admin/payments/providercall/",
        {"action": "retry_now", "_selected_action": [shown.pk]},
    )
    assert ProviderCall.objects.get(pk=shown.pk).state == ProviderCall.State.GAVE_UP


@pytest.mark.django_db
def test_retry_now_needs_its_permission_and_touches_only_the_staffs_facilities(
    client, django_capture_on_commit_callbacks, queued_provider_calls
):
    mine, other = FacilityFactory(), FacilityFactory()
    shown, hidden = _given_up_call(mine), _given_up_call(other)
    officer = _staff(mine, "retry_providercall")
    client.force_login(officer)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            "/admin/payments/providercall/",
            {"action": "retry_now", "_selected_action": [shown.pk, hidden.pk]},
        )
    assert answer.status_code == 302
    assert ProviderCall.objects.get(pk=hidden.pk).state == ProviderCall.State.GAVE_UP
    assert ProviderCall.objects.get(pk=shown.pk).state == ProviderCall.State.PENDING
    assert queued_provider_calls == [{"call_id": shown.pk}]
    # The retry is a single UPDATE: its audit entry is written by the service.
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(ProviderCall), object_pk=str(shown.pk)
    )
    assert entry.actor == officer
    assert entry.additional_data["facility_id"] == mine.pk
    assert entry.changes["state"] == [ProviderCall.State.GAVE_UP, ProviderCall.State.PENDING]
    assert queued_provider_calls.run() == ["done"]
    assert SandboxCharge.objects.get(reference=shown.payment.provider_reference).status == (
        SandboxCharge.Status.REFUNDED
    )


@pytest.mark.django_db
def test_the_dashboard_warns_of_the_facilitys_failing_calls(client):
    facility = FacilityFactory()
    _given_up_call(facility)
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get(f"/admin/reports/dashboard/?facility={facility.pk}").content.decode()
    assert "provider-call-warning" in page
    assert "1 refund or other call to a payment provider keeps failing." in page
    quiet = client.get(f"/admin/reports/dashboard/?facility={FacilityFactory().pk}")
    assert "provider-call-warning" not in quiet.content.decode()
