"""Bodies built to break the parser get the API's envelope, never a 500 or Django's HTML page:
a JSON body nested deeper than Python's decoder goes is 400 ``validation_error``, a body over
the upload limit is 413 ``request_too_large``; neither signs anyone in nor places an order."""

import pytest
from django.conf import settings

from catalog.models import Order
from kiosk.models import KioskSession, PinFailureCounter

from .conftest import API, error_of

DEEP_BODIES = {
    "arrays": "[" * 5000 + "]" * 5000,
    "objects": '{"a": ' * 5000 + "1" + "}" * 5000,
    "items": '{"items": ' + "[" * 5000 + "]" * 5000 + "}",
    "nine hundred deep": '{"items": ' + "[" * 900 + "]" * 900 + "}",
}


def _post(kiosk, path, raw_body):
    return kiosk.client.post(
        API + path,
        raw_body,
        content_type="application/json",
        **kiosk.headers({"Idempotency-Key": "hostile-1"}),
    )


@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
@pytest.mark.parametrize("path", ["sessions", "orders"])
def test_a_deeply_nested_body_is_400_validation_error(signed_in, path, shape):
    answer = _post(signed_in, path, DEEP_BODIES[shape])
    assert answer.status_code == 400, answer.content[:200]
    assert answer["Content-Type"] == "application/json"
    assert error_of(answer) == "validation_error"
    assert KioskSession.objects.count() == 1  # the fixture's own
    assert not Order.objects.exists()


@pytest.mark.parametrize("path", ["sessions", "orders"])
def test_a_body_over_the_upload_limit_is_413_in_the_envelope(signed_in, inmate, path):
    item = '{"product_id": 1, "quantity": 1}'
    raw_body = '{"items": [' + ",".join([item] * 100_000) + "]}"
    assert len(raw_body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    answer = _post(signed_in, path, raw_body)
    assert answer.status_code == 413, answer.content[:200]
    assert answer["Content-Type"] == "application/json"
    assert error_of(answer) == "request_too_large"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in answer.json()["error"]["message"]
    assert KioskSession.objects.count() == 1
    assert not Order.objects.exists()
    assert not PinFailureCounter.objects.filter(inmate=inmate, failures__gt=0).exists()
