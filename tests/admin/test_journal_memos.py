"""The journal's memos are kept as written (the auditor's text) and read in the reader's
language: the memos the system writes (an order's purchase, a line refund, money moved to held
on a transfer, the payout on release), old rows included, in the admin journal, its CSV export,
the monthly statements and the kiosk (``tests/kiosk/test_contract.py``); a line refund's product
by its name in the reader's language, as its order line keeps it; a person's own words are
shown as written."""

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone, translation

from catalog import services
from catalog.models import LineRefund, Product
from catalog.services.refunds import refund_line
from facilities import services as facility_services
from ledger import memos
from ledger.models import Transaction
from ledger.statements import _shown_lines
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.factories import InmateFactory, StaffFactory
from tests.kiosk.conftest import Kiosk

pytestmark = pytest.mark.django_db

# As the earlier releases wrote them (rows already in the journal).
OLD_ROWS = {
    "Commissary order #7": ("狱内商店订单 #7", "Commissary order #7"),
    "Refund for order #7, line 2 × Soap: Out of stock at picking": (
        "订单 #7 退款：Soap × 2，原因：拣货时缺货",
        "Refund for order #7, line 2 × Soap: Out of stock at picking",
    ),
    "Over the balance cap of Beijing No. 2": (
        "超出Beijing No. 2的余额上限",
        "Over the balance cap of Beijing No. 2",
    ),
    "Paid out on release": ("释放时支付", "Paid out on release"),
    "Correction after a miscount": ("Correction after a miscount", "Correction after a miscount"),
    "": ("", ""),
}


@pytest.mark.parametrize("memo", list(OLD_ROWS))
def test_a_memo_reads_in_the_reader_s_language_and_a_person_s_words_as_written(memo):
    chinese, english = OLD_ROWS[memo]
    with translation.override("zh-hans"):
        assert memos.shown_memo(memo) == chinese
    with translation.override("en"):
        assert memos.shown_memo(memo) == english


def test_the_memos_written_today_have_the_shapes_that_are_read_back():
    refund = memos.line_refund_memo(
        order_id=7, quantity=2, product="Soap", reason="Out of stock at picking"
    )
    written = [memos.purchase_memo(7), refund, memos.transfer_excess_memo("Beijing No. 2")]
    assert written == list(OLD_ROWS)[:3]
    with translation.override("zh-hans"):
        assert [memos.shown_memo(memo) for memo in written] == [
            OLD_ROWS[memo][0] for memo in written
        ]


def _ordered(inmate, *, quantity=2):
    funded(inmate, 10_000)
    product = product_at(inmate.facility, price_fen=300, name_en="Soap", name_zh="肥皂")
    device, _ = facility_services.register_kiosk_device(facility=inmate.facility, name="K")
    return order_from_kiosk(inmate, device, product, f"o-{inmate.pk}", quantity=quantity)


def test_a_refund_filed_from_a_chinese_page_is_written_in_english_and_read_in_chinese():
    """The reason's label was formatted in the active language: a dispute refunded from a
    Chinese admin page wrote a half-Chinese memo that no English reader could have."""
    order = _ordered(InmateFactory())
    with translation.override("zh-hans"), transaction.atomic():
        refund_line(
            order=order,
            line=order.items.get(),
            quantity=1,
            amount_fen=300,
            reason=LineRefund.Reason.DISPUTE,
            idempotency_key="r1",
            staff_id=None,
            now=timezone.now(),
        )
    refund = Transaction.objects.get(kind=Transaction.Kind.REFUND)
    assert refund.memo == f"Refund for order #{order.pk}, line 2 × Soap: Dispute"
    with translation.override("zh-hans"):
        assert memos.shown_memo(refund.memo) == f"订单 #{order.pk} 退款：肥皂 × 2，原因：申诉"


def test_the_admin_journal_and_its_export_show_the_memo_in_the_reader_s_language(client, site_a):
    order = _ordered(site_a.inmate)
    purchase = Transaction.objects.get(kind=Transaction.Kind.PURCHASE)
    assert purchase.memo == f"Commissary order #{order.pk}"  # kept as written
    client.force_login(site_a.staff["auditor"])
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    listing = client.get("/admin/ledger/transaction/", **zh).content.decode()
    assert f"狱内商店订单 #{order.pk}" in listing
    assert f"Commissary order #{order.pk}" not in listing
    page = client.get(f"/admin/ledger/transaction/{purchase.pk}/change/", **zh).content.decode()
    assert f"狱内商店订单 #{order.pk}" in page and f"Commissary order #{order.pk}" in page
    export = client.get("/admin/ledger/transaction/export/", **zh).content.decode("utf-8-sig")
    header, *rows = csv.reader(io.StringIO(export))
    row = next(row for row in rows if row[header.index("id")] == str(purchase.pk))
    assert row[header.index("memo")] == f"Commissary order #{order.pk}"
    assert row[header.index("description")] == f"狱内商店订单 #{order.pk}"


def test_a_statement_shows_the_memo_in_its_language():
    rows = [
        (
            dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC),
            "purchase",
            "Commissary order #7",
            "spendable",
            -300,
        ),
        (
            dt.datetime(2026, 1, 6, 2, 0, tzinfo=dt.UTC),
            "payout",
            "Paid out on release",
            "spendable",
            -700,
        ),
    ]
    with translation.override("zh-hans"):
        lines = _shown_lines(rows, zone=ZoneInfo("Asia/Shanghai"), currency="CNY")
    assert "狱内商店订单 #7" in lines[0]["what"] and "Commissary" not in lines[0]["what"]
    assert "释放时支付" in lines[1]["what"]


def _refunded(inmate):
    """An order of two soaps (肥皂), one short at picking: its line refund's transaction."""
    order = _ordered(inmate)
    services.mark_order_picked(
        order_id=order.pk,
        staff_id=StaffFactory().pk,
        short={order.items.get().pk: (1, LineRefund.Reason.OUT_OF_STOCK)},
    )
    refund = Transaction.objects.get(kind=Transaction.Kind.REFUND)
    assert refund.memo == f"Refund for order #{order.pk}, line 2 × Soap: Out of stock at picking"
    return order, refund


def test_a_line_refund_names_the_product_in_the_reader_s_language():
    order, refund = _refunded(InmateFactory())
    with translation.override("zh-hans"):
        assert memos.shown_memo(refund.memo) == f"订单 #{order.pk} 退款：肥皂 × 2，原因：拣货时缺货"
    with translation.override("en"):
        assert memos.shown_memo(refund.memo) == refund.memo
    # The name as sold: a later rename of the product does not rewrite the journal.
    Product.objects.filter(name_en="Soap").update(name_zh="香皂")
    with translation.override("zh-hans"):
        assert "肥皂 × 2" in memos.shown_memo(refund.memo)
    # A memo whose order has no line of that name keeps the name it holds.
    other = f"Refund for order #{order.pk}, line 2 × Towel: Out of stock at picking"
    with translation.override("zh-hans"):
        assert memos.shown_memo(other) == f"订单 #{order.pk} 退款：Towel × 2，原因：拣货时缺货"


def test_the_admin_journal_names_a_refunded_product_in_the_reader_s_language(client, site_a):
    order, refund = _refunded(site_a.inmate)
    client.force_login(site_a.staff["auditor"])
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    listing = client.get("/admin/ledger/transaction/", **zh).content.decode()
    assert f"订单 #{order.pk} 退款：肥皂 × 2" in listing
    english = client.get("/admin/ledger/transaction/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Refund for order #{order.pk}, line 2 × Soap" in english and "肥皂" not in english
    export = client.get("/admin/ledger/transaction/export/", **zh).content.decode("utf-8-sig")
    header, *rows = csv.reader(io.StringIO(export))
    row = next(row for row in rows if row[header.index("id")] == str(refund.pk))
    assert row[header.index("memo")] == refund.memo  # kept as written
    assert row[header.index("description")] == f"订单 #{order.pk} 退款：肥皂 × 2，原因：拣货时缺货"


def test_a_statement_names_a_refunded_product_in_its_language():
    order, refund = _refunded(InmateFactory())
    rows = [(refund.created_at, "refund", refund.memo, "spendable", 300)]
    with translation.override("zh-hans"):
        chinese = _shown_lines(rows, zone=ZoneInfo("Asia/Shanghai"), currency="CNY")
    with translation.override("en"):
        english = _shown_lines(rows, zone=ZoneInfo("Asia/Shanghai"), currency="CNY")
    assert f"订单 #{order.pk} 退款：肥皂 × 2" in chinese[0]["what"]
    assert "Soap" not in chinese[0]["what"]
    assert "line 2 × Soap" in english[0]["what"]


def test_the_kiosk_describes_a_refunded_product_in_its_language():
    inmate = InmateFactory()
    order, refund = _refunded(inmate)
    kiosk = Kiosk(inmate.facility)
    kiosk.sign_in(inmate)
    for language, product in (("zh-hans", "肥皂"), ("en", "Soap")):
        lines = kiosk.get("me/transactions", headers={"Accept-Language": language}).json()
        line = next(line for line in lines["results"] if line["kind"] == "refund")
        assert product in line["description"], line
        assert line["memo"] == refund.memo
    assert line["description"] == refund.memo  # English reads as written
