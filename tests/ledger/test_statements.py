"""Monthly statements: the month's lines between the right opening and closing balances, as
HTML and PDF, rewritten (not duplicated) on a re-run, and downloadable by staff."""

import base64
import contextlib
import datetime as dt
import re
import zlib

import pytest

from ledger.models import Statement
from ledger.statements import generate_statements
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .helpers import SHANGHAI, deposit, post_purchase

pytestmark = pytest.mark.django_db

JANUARY = dt.date(2026, 1, 1)


def pdf_text(pdf: bytes) -> str:
    """The text a statement PDF shows: its page streams decoded (ASCII85, then deflate, as
    ReportLab writes them), the strings drawn with ``Tj`` unescaped and read as the CJK font's
    UTF-16."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        stream = stream.strip()
        if stream.endswith(b"~>"):
            stream = base64.a85decode(stream[:-2])
        with contextlib.suppress(zlib.error):
            stream = zlib.decompress(stream)
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", stream, re.S):
            raw = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m[1], 8)]) if m[1][:1].isdigit() else m[1],
                literal,
            )
            shown.append(raw.decode("utf-16-be", errors="replace"))
    return " ".join(shown)


@pytest.fixture
def inmate():
    inmate = InmateFactory(
        facility=FacilityFactory(),
        surname="Zhang",
        given_name="San",
        now=dt.datetime(2025, 12, 1, tzinfo=SHANGHAI),  # admitted in December 2025
    )
    deposit(inmate, 10_000, now=dt.datetime(2025, 12, 31, 23, 0, tzinfo=SHANGHAI))  # December
    deposit(inmate, 5_000, now=dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=SHANGHAI))  # January
    post_purchase(inmate.pk, 1_250, memo="soap", now=dt.datetime(2026, 1, 15, tzinfo=SHANGHAI))
    deposit(inmate, 7_000, now=dt.datetime(2026, 2, 1, 0, 0, 1, tzinfo=SHANGHAI))  # February
    return inmate


def test_a_statement_has_the_month_lines_between_opening_and_closing(inmate):
    run = generate_statements(facility_id=inmate.facility_id, month=JANUARY, chunk_size=1)
    statement = Statement.objects.get(inmate=inmate, month=JANUARY)
    assert (statement.opening_fen, statement.closing_fen) == (10_000, 13_750)
    assert "¥100.00" in statement.html and "¥137.50" in statement.html
    assert "-¥12.50" in statement.html and "soap" in statement.html
    assert "¥70.00" not in statement.html  # February's deposit is next month's
    assert bytes(statement.pdf).startswith(b"%PDF")
    assert (run.status, run.counts, run.progress_done, run.progress_total) == (
        "succeeded",
        {"statements": 1},
        1,
        1,
    )


def test_a_second_run_rewrites_instead_of_duplicating(inmate):
    generate_statements(facility_id=inmate.facility_id, month=JANUARY)
    generate_statements(facility_id=inmate.facility_id, month=JANUARY)
    assert Statement.objects.filter(inmate=inmate).count() == 1


def test_inmates_admitted_after_the_month_get_no_statement(inmate):
    later = InmateFactory(facility=inmate.facility)  # admitted now, long after January 2026
    generate_statements(facility_id=inmate.facility_id, month=JANUARY)
    assert not Statement.objects.filter(inmate=later).exists()


def test_staff_download_statements_from_the_admin(inmate, client):
    generate_statements(facility_id=inmate.facility_id, month=JANUARY)
    statement = Statement.objects.get(inmate=inmate)
    client.force_login(StaffFactory(is_superuser=True))
    listing = client.get("/admin/ledger/statement/")
    assert listing.status_code == 200 and b"download.pdf" in listing.content
    pdf = client.get(f"/admin/ledger/statement/{statement.pk}/download.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    html = client.get(f"/admin/ledger/statement/{statement.pk}/download.html")
    assert "Zhang" in html.content.decode()


def test_statement_downloads_need_a_staff_sign_in(inmate, client):
    generate_statements(facility_id=inmate.facility_id, month=JANUARY)
    statement = Statement.objects.get(inmate=inmate)
    response = client.get(f"/admin/ledger/statement/{statement.pk}/download.pdf")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_statement_reads_in_the_sites_language_with_its_lines_in_words(inmate):
    from django.utils import translation

    with translation.override("zh-hans"):
        generate_statements(facility_id=inmate.facility_id, month=JANUARY, chunk_size=1)
    statement = Statement.objects.get(inmate=inmate, month=JANUARY)
    assert "托管账户对账单" in statement.html and "期初余额" in statement.html
    assert "Opening balance" not in statement.html and ">spendable<" not in statement.html
    assert bytes(statement.pdf).startswith(b"%PDF")
    text = pdf_text(bytes(statement.pdf))
    assert "托管账户对账单" in text and "期初余额" in text and "ZhangSan" in text
    assert "¥137.50" in text and "Opening balance" not in text


def test_the_pdf_statement_reads_in_english_too(inmate):
    from django.utils import translation

    with translation.override("en"):
        generate_statements(facility_id=inmate.facility_id, month=JANUARY)
    text = pdf_text(bytes(Statement.objects.get(inmate=inmate).pdf))
    assert "trust account statement" in text and "Opening balance" in text
    assert "¥100.00" in text and "-¥12.50" in text and "soap" in text
