"""The published OpenAPI schema against the running API (schemathesis, in process over WSGI):
with a real kiosk key and a live inmate session, generated requests to every operation get no
server error and no answer that the schema does not describe (status, headers, body)."""

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks

from facilities import services as facility_services
from kiosk import services as kiosk_services
from kiosk.authentication import DeviceThrottle, SignInThrottle
from tests.catalog.helpers import funded, product_at
from tests.factories import FacilityFactory, InmateFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def _keep_the_test_connection():
    """As Django's test client does: a request's end must not close the connection that holds
    the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def kiosk_headers(db, monkeypatch, _keep_the_test_connection):
    monkeypatch.setattr(DeviceThrottle, "rate", "100000/min", raising=False)
    monkeypatch.setattr(SignInThrottle, "rate", "100000/min", raising=False)
    cache.clear()
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility, inmate_number="D0000001"), 50_000)
    for price in (100, 450, 1_200):
        product_at(facility, price_fen=price)
    device, key = facility_services.register_kiosk_device(facility=facility, name="Schema")

    def headers():
        # a fresh session each case: a generated sign-out must not starve the cases after it
        _session, token = kiosk_services.sign_in(
            device=device, inmate_number=inmate.inmate_number, pin="1234"
        )
        return {"Authorization": f"Kiosk {key}", "X-Inmate-Session": token}

    return headers


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_matches_its_published_schema(case, kiosk_headers):
    # Real credentials replace the generated ones; a case generated without one (to check
    # that it is refused) stays without it.
    generated = case.headers or {}
    real = {name: value for name, value in kiosk_headers().items() if name in generated}
    # positive_data_acceptance is left out: a well-formed order is refused by business rules
    # (422 out of stock, 400 over a product's maximum or the same product twice), which the
    # schema documents but JSON Schema cannot express as validity.
    case.call_and_validate(
        headers={**generated, **real}, excluded_checks=[checks.positive_data_acceptance]
    )


def test_the_schema_and_its_docs_are_served_without_inline_script(client):
    schema_answer = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema_answer.status_code == 200
    paths = schema_answer.json()["paths"]
    assert set(paths) == {
        "/api/kiosk/v1/sessions",
        "/api/kiosk/v1/sessions/current",
        "/api/kiosk/v1/me/balance",
        "/api/kiosk/v1/me/transactions",
        "/api/kiosk/v1/catalog",
        "/api/kiosk/v1/orders",
        "/api/kiosk/v1/orders/{order_id}",
    }
    post_orders = paths["/api/kiosk/v1/orders"]["post"]
    assert {"201", "400", "401", "404", "409", "422", "429"} <= set(post_orders["responses"])
    assert "Retry-After" in post_orders["responses"]["429"]["headers"]
    assert "WWW-Authenticate" in post_orders["responses"]["401"]["headers"]
    post_sessions = paths["/api/kiosk/v1/sessions"]["post"]
    for operation in (post_orders, post_sessions):
        assert "request_too_large" in operation["responses"]["413"]["description"]
    assert "Retry-After" in post_sessions["responses"]["423"]["headers"]
    assert "Retry-After" in post_sessions["responses"]["429"]["headers"]
    sign_out = paths["/api/kiosk/v1/sessions/current"]["delete"]
    assert "429" not in sign_out["responses"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "<script>" not in html and "<style" not in html and "style=" not in html
    assert 'src="/api/docs/?script=' in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]
