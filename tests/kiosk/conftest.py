"""A kiosk of a facility with an inmate signed in, and an API client that speaks for it."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from facilities import services as facility_services
from tests.factories import FacilityFactory, InmateFactory

API = "/api/kiosk/v1/"


class Kiosk:
    """A kiosk device's client: sends its key, and the inmate's session once signed in."""

    def __init__(self, facility, name="Kiosk"):
        self.facility = facility
        self.device, self.key = facility_services.register_kiosk_device(
            facility=facility, name=name
        )
        self.client = APIClient()
        self.session = None

    def headers(self, extra=None):
        headers = {"HTTP_AUTHORIZATION": f"Kiosk {self.key}"}
        if self.session:
            headers["HTTP_X_INMATE_SESSION"] = self.session
        for name, value in (extra or {}).items():
            headers["HTTP_" + name.upper().replace("-", "_")] = value
        return headers

    def get(self, path, headers=None, **params):
        return self.client.get(API + path, params, **self.headers(headers))

    def post(self, path, body=None, headers=None, **kwargs):
        return self.client.post(API + path, body, format="json", **self.headers(headers), **kwargs)

    def delete(self, path, headers=None):
        return self.client.delete(API + path, **self.headers(headers))

    def sign_in(self, inmate, pin="1234"):
        answer = self.post("sessions", {"inmate_number": inmate.inmate_number, "pin": pin})
        assert answer.status_code == 201, answer.content
        self.session = answer.json()["session"]
        return answer

    def order(self, items, key, headers=None):
        return self.post(
            "orders", {"items": items}, headers={"Idempotency-Key": key, **(headers or {})}
        )


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counts live in the shared cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def facility(db):
    return FacilityFactory()


@pytest.fixture
def inmate(facility):
    return InmateFactory(facility=facility)


@pytest.fixture
def kiosk(facility):
    return Kiosk(facility)


@pytest.fixture
def signed_in(kiosk, inmate):
    kiosk.sign_in(inmate)
    return kiosk


def error_of(answer):
    body = answer.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return body["error"]["code"]
