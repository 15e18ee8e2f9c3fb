"""The order body's quick check accepts exactly what ``OrderRequest`` accepts, with the same
items: anything else still gets the serializer's refusal and message."""

from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from kiosk.serializers import MAX_QUANTITY, OrderRequest, order_items

numbers = st.one_of(
    st.integers(min_value=-2, max_value=3),
    st.integers(min_value=MAX_QUANTITY - 1, max_value=MAX_QUANTITY + 1),
    st.integers(min_value=2**63 - 2, max_value=2**63 + 1),
    st.booleans(),
    st.floats(allow_nan=False, max_value=5, min_value=-1),
    st.text(max_size=3),
    st.none(),
)
lines = st.one_of(
    st.fixed_dictionaries({"product_id": numbers, "quantity": numbers}),
    st.fixed_dictionaries(
        {"product_id": numbers, "quantity": numbers}, optional={"price": numbers}
    ),
    st.dictionaries(st.sampled_from(["product_id", "quantity", "total"]), numbers, max_size=3),
    numbers,
    st.lists(numbers, max_size=2),
)
bodies = st.one_of(
    st.fixed_dictionaries({"items": st.lists(lines, max_size=52)}),
    st.fixed_dictionaries({"items": st.lists(lines, max_size=3)}, optional={"total": numbers}),
    st.fixed_dictionaries({"items": numbers}),
    st.dictionaries(st.sampled_from(["items", "balance"]), numbers, max_size=2),
    st.lists(lines, max_size=2),
    numbers,
)


def _serializer_items(data):
    body = OrderRequest(data=data)
    if not body.is_valid():
        return None
    return [dict(item) for item in body.validated_data["items"]]


def _quick_items(data):
    try:
        return [dict(item) for item in order_items(data)]
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(bodies)
def test_the_quick_check_and_the_serializer_agree(data):
    assert _quick_items(data) == _serializer_items(data)


def test_a_plain_order_and_the_edges_pass_both_ways():
    for items in (
        [{"product_id": 1, "quantity": 1}],
        [{"product_id": 2**63 - 1, "quantity": MAX_QUANTITY}],
        [{"product_id": n, "quantity": 1} for n in range(1, 51)],
    ):
        assert _quick_items({"items": items}) == _serializer_items({"items": items}) == items
    for items in (
        [],
        [{"product_id": n, "quantity": 1} for n in range(1, 52)],
        [{"product_id": 1, "quantity": True}],
        [{"product_id": 1, "quantity": 1.0}],
        [{"product_id": 1, "quantity": 1, "price": 1}],
    ):
        assert _quick_items({"items": items}) is None
