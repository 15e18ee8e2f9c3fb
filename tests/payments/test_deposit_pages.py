"""The deposit form: room, fee and total shown before anything is reserved; yuan typed and
converted exactly; over-room amounts refused with the most that can be sent, reserving
nothing; a depositor sees only their own links and deposits."""

import pytest

from ledger.models import Deposit
from payments.models import Payment
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit

from .helpers import approved_link, depositor

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(client):
    user = depositor()
    client.force_login(user)
    return user


def test_form_shows_room_and_no_fee_when_the_facility_charges_none(client, family):
    inmate = InmateFactory()
    link = approved_link(family, inmate)
    deposit(inmate, 30_000)
    page = client.get(f"/family/links/{link.pk}/deposit", headers={"accept-language": "en"})
    text = page.content.decode()
    assert page.status_code == 200
    assert "¥700.00" in text  # 1,000 a month less 300 received
    assert "No fee." in text


@pytest.mark.parametrize(
    ("rate_bp", "fixed_fen", "told"),
    [
        (100, 0, "Fee: 1% of the amount, paid by you on top."),
        (0, 200, "Fee: ¥2.00 a deposit, paid by you on top."),
        (150, 50, "Fee: 1.5% of the amount plus ¥0.50, paid by you on top."),
    ],
)
def test_the_form_names_only_the_fee_parts_the_facility_charges(
    client, family, rate_bp, fixed_fen, told
):
    facility = FacilityFactory(deposit_fee_rate_bp=rate_bp, deposit_fee_fixed_fen=fixed_fen)
    link = approved_link(family, InmateFactory(facility=facility))
    page = client.get(f"/family/links/{link.pk}/deposit", headers={"accept-language": "en"})
    assert told in page.content.decode()


def test_review_shows_fee_and_total_and_reserves_nothing(client, family, ledger_snapshot):
    facility = FacilityFactory(deposit_fee_rate_bp=100, deposit_fee_fixed_fen=50)
    link = approved_link(family, InmateFactory(facility=facility))
    before = ledger_snapshot()
    page = client.post(
        f"/family/links/{link.pk}/deposit", {"amount": "123.45"}, headers={"accept-language": "en"}
    )
    text = page.content.decode()
    assert page.status_code == 200
    assert "¥123.45" in text
    assert "¥1.74" in text  # 50 fen + 1% of 12,345 fen rounded up (124)
    assert "¥125.19" in text
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("12.345", "at most two after the point"),
        ("abc", "at most two after the point"),
        ("-5", "at most two after the point"),
        ("0", "more than zero"),
        ("", "Type the amount"),
    ],
)
def test_amount_not_in_yuan_gets_a_sentence(client, family, typed, message, ledger_snapshot):
    link = approved_link(family, InmateFactory())
    before = ledger_snapshot()
    page = client.post(
        f"/family/links/{link.pk}/deposit", {"amount": typed}, headers={"accept-language": "en"}
    )
    assert message in page.content.decode()
    assert ledger_snapshot() == before


def test_over_room_amount_is_refused_with_the_most_that_can_be_sent(
    client, family, ledger_snapshot
):
    inmate = InmateFactory()
    link = approved_link(family, inmate)
    deposit(inmate, 90_000)
    before = ledger_snapshot()
    page = client.post(
        f"/family/links/{link.pk}/deposit", {"amount": "100.01"}, headers={"accept-language": "en"}
    )
    assert "The most that can be sent now is ¥100.00." in page.content.decode()
    assert ledger_snapshot() == before


def test_confirm_reserves_and_sends_to_the_sandbox_page_once_per_key(client, family):
    inmate = InmateFactory()
    link = approved_link(family, inmate)
    form = {"amount_fen": 20_000, "idempotency_key": "6f0c35b8-8f4c-4a39-9a0c-6e9e5b7c7d11"}
    first = client.post(f"/family/links/{link.pk}/deposit/confirm", form)
    again = client.post(f"/family/links/{link.pk}/deposit/confirm", form)
    reserved = Deposit.objects.get(inmate=inmate)
    assert reserved.status == Deposit.Status.CREATED
    assert reserved.amount_fen == 20_000 and reserved.depositor == family
    payment = Payment.objects.get(deposit=reserved)
    assert payment.amount_fen == 20_000
    assert first["Location"] == again["Location"] == f"/payments/sandbox/pay/{reserved.reference}"


def test_confirm_over_room_reserves_nothing(client, family, ledger_snapshot):
    inmate = InmateFactory()
    link = approved_link(family, inmate)
    deposit(inmate, 99_000)
    before = ledger_snapshot()
    page = client.post(
        f"/family/links/{link.pk}/deposit/confirm",
        {"amount_fen": 2_000, "idempotency_key": "6f0c35b8-8f4c-4a39-9a0c-6e9e5b7c7d12"},
        headers={"accept-language": "en"},
    )
    assert page.status_code == 422
    assert "The most that can be sent now is ¥10.00." in page.content.decode()
    assert ledger_snapshot() == before


def test_balance_room_is_shown_rounded_down_to_100_yuan(client, family):
    facility = FacilityFactory(balance_cap_fen=100_000, monthly_cap_fen=100_000)
    inmate = InmateFactory(facility=facility)
    link = approved_link(family, inmate)
    deposit(inmate, 12_345)
    # Raise the month cap so the balance room (876.55) is the smaller of the two.
    facility.monthly_cap_fen = 200_000
    facility.save(update_fields=["monthly_cap_fen"])
    from ledger.models import MonthlyPeriod

    MonthlyPeriod.objects.filter(inmate=inmate).update(cap_fen=200_000)
    page = client.get(f"/family/links/{link.pk}/deposit", headers={"accept-language": "en"})
    text = page.content.decode()
    assert "¥800.00" in text  # balance room 876.55 shown as 800
    assert "876.55" not in text


def test_another_depositors_link_and_deposit_answer_404(client, family):
    other = depositor()
    inmate = InmateFactory()
    their_link = approved_link(other, inmate)
    theirs = deposit(inmate, 1_000)
    Deposit.objects.filter(pk=theirs.pk).update(depositor=other)
    assert client.get(f"/family/links/{their_link.pk}/deposit").status_code == 404
    assert client.get(f"/family/deposits/{theirs.reference}").status_code == 404
    assert str(theirs.reference) not in client.get("/family/deposits/").content.decode()


def test_pending_link_cannot_deposit(client, family, ledger_snapshot):
    link = approved_link(family, InmateFactory())
    link.status = link.Status.PENDING
    link.save()
    before = ledger_snapshot()
    assert client.get(f"/family/links/{link.pk}/deposit").status_code == 404
    response = client.post(
        f"/family/links/{link.pk}/deposit/confirm",
        {"amount_fen": 100, "idempotency_key": "6f0c35b8-8f4c-4a39-9a0c-6e9e5b7c7d13"},
    )
    assert response.status_code == 404
    assert ledger_snapshot() == before
