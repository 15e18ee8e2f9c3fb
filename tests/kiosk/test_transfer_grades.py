"""After a transfer, the new facility's kiosk holds the inmate to the new facility's grade of
the same name, or to no spending limit where it has none: ``GET me/balance`` reports it and
``POST orders`` is refused (422 ``spending_limit_exceeded``) or taken accordingly."""

import pytest

from catalog.models import Order
from facilities import services as facility_services
from tests.catalog.helpers import funded, grade_at, product_at
from tests.factories import FacilityFactory
from tests.ledger.helpers import key

from .conftest import Kiosk, error_of


@pytest.mark.parametrize("has_same_name", [True, False], ids=["same-name", "no-such-grade"])
def test_the_new_facility_s_kiosk_applies_the_grade_the_transfer_gave(
    facility, inmate, has_same_name
):
    # ¥400 a month where the inmate comes from; ¥20 (or no grade at all) where it goes.
    funded(inmate, 20_000)
    old_grade = grade_at(facility, limit_fen=40_000, name="Grade A")
    facility_services.assign_grade(inmate_id=inmate.pk, grade_id=old_grade.pk)
    there = FacilityFactory()
    if has_same_name:
        grade_at(there, limit_fen=2_000, name="Grade A")
    facility_services.transfer_inmate(
        inmate_id=inmate.pk,
        to_facility=there,
        staff_id=None,
        idempotency_scope="system",
        idempotency_key=key(),
    )
    kiosk = Kiosk(there)
    kiosk.sign_in(inmate)
    product = product_at(there, price_fen=1_000)

    spending = kiosk.get("me/balance").json()["spending"]
    answer = kiosk.order([{"product_id": product.pk, "quantity": 3}], key="three")

    if has_same_name:
        assert spending == {"period": "month", "spent": 0, "limit": 2_000, "remaining": 2_000}
        assert answer.status_code == 422 and error_of(answer) == "spending_limit_exceeded"
        assert not Order.objects.filter(inmate=inmate).exists()
    else:
        assert spending == {"period": "month", "spent": 0, "limit": None, "remaining": None}
        assert answer.status_code == 201 and answer.json()["total"] == 3_000
