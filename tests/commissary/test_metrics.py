"""/metrics: Prometheus figures for the operators' scraper, refused to everyone outside
METRICS_ALLOWED_CIDRS."""

import re

import pytest

from ledger import services as ledger_services
from ledger.models import Account, ReconciliationFinding, ScheduledRun
from tests.catalog.helpers import funded, product_at
from tests.factories import FacilityFactory, InmateFactory
from tests.kiosk.conftest import Kiosk


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in the exposition text, or None."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


@pytest.mark.django_db
def test_loopback_reads_the_metrics_by_default(client):
    response = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "django_http_requests_before_middlewares_total" in text
    assert sample(text, "commissary_database_statement_seconds_count") is not None


@pytest.mark.django_db
def test_an_address_outside_the_allowed_networks_is_refused(client, settings):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert response.content == b""
    settings.METRICS_ALLOWED_CIDRS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 403  # loopback no longer listed
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="not-an-address").status_code == 403


@pytest.mark.django_db
def test_metrics_count_deposits_by_state_runs_findings_and_kiosk_orders(client):
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 10_000)
    pending = InmateFactory(facility=facility)
    ledger_services.reserve_deposit(
        inmate_id=pending.pk,
        amount_fen=2_500,
        idempotency_key="metrics-pending",
        idempotency_scope="depositor:1",
    )
    run = ScheduledRun.objects.create(
        kind="reconciliation", status="found_problems", started_at="2026-01-01T00:00:00Z"
    )
    ReconciliationFinding.objects.create(
        run=run, check_name="balances", subject="x", expected="1", actual="2"
    )
    kiosk = Kiosk(facility)
    kiosk.sign_in(inmate)
    product = product_at(facility, price_fen=3_000)
    before = client.get("/metrics").content.decode()
    placed_before = sample(before, "commissary_kiosk_orders_total", result="placed") or 0
    short_before = sample(before, "commissary_kiosk_orders_total", result="insufficient_funds") or 0
    assert kiosk.order([{"product_id": product.pk, "quantity": 1}], "m-1").status_code == 201
    refused = kiosk.order([{"product_id": product.pk, "quantity": 10}], "m-2")
    assert refused.json()["error"]["code"] == "insufficient_funds"

    text = client.get("/metrics").content.decode()
    assert sample(text, "commissary_kiosk_orders_total", result="placed") == placed_before + 1
    assert (
        sample(text, "commissary_kiosk_orders_total", result="insufficient_funds")
        == short_before + 1
    )
    assert sample(text, "commissary_deposits", status="credited") == 1
    assert sample(text, "commissary_deposits", status="created") == 1
    assert sample(text, "commissary_deposits_amount_fen", status="created") == 2_500
    assert (
        sample(
            text, "commissary_scheduled_runs_total", kind="reconciliation", status="found_problems"
        )
        == 1
    )
    assert sample(text, "commissary_reconciliation_findings", check="balances") == 1
    # The counted order is the one the ledger debited.
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 10_000 - 3_000
