"""Monthly statements: for each inmate of a facility, the month's statement lines with opening
and closing balances, kept as HTML and PDF. Generated in chunks of inmates (two set-based
queries a chunk) with a progress record, so memory stays flat however large the facility.
Those two queries are reads that can wait: they go to the read replica when one is fit
(``commissary.replica``; a statement is of a month already closed), and to the primary when it
is not or fails."""

import datetime as dt
import io
import logging
from collections import defaultdict
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from commissary import replica
from commissary.money import format_fen
from facilities.models import Facility, Inmate

from . import archive, chunks, memos, partitions, sql
from .batch import inmate_id_chunks, run_here, start_chunked_run
from .chunks import Claim, Job, Piece, finish_run, summed
from .models import Account, ScheduledRun, Statement, Transaction

logger = logging.getLogger(__name__)


def _shown_lines(rows, *, zone, currency: str) -> list[dict]:
    """A statement's lines as shown, labelled in the active language (the project's choice
    labels are made translatable once the apps are loaded, so they are read here, not at
    import)."""
    kind_labels = dict(Transaction._meta.get_field("kind").choices)
    account_labels = dict(Account._meta.get_field("kind").choices)
    return [
        {
            "when": timezone.localtime(created_at, zone).strftime("%Y-%m-%d %H:%M"),
            "what": str(kind_labels.get(kind, kind))
            + (f" ({memos.shown_memo(memo)})" if memo else ""),
            "account": str(account_labels.get(account_kind, account_kind)),
            "amount": format_fen(amount_fen, currency),
        }
        for created_at, kind, memo, account_kind, amount_fen in rows
    ]


def _month_bounds(month: dt.date, timezone_name: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where a facility-local calendar month starts and ends."""
    zone = ZoneInfo(timezone_name)
    start = dt.datetime(month.year, month.month, 1, tzinfo=zone)
    following = partitions.add_months(month, 1)
    end = dt.datetime(following.year, following.month, 1, tzinfo=zone)
    return start, end


def previous_month(facility: Facility, now: dt.datetime) -> dt.date:
    this_month = facility.local_month(now)
    return (this_month - dt.timedelta(days=1)).replace(day=1)


# A CJK font every PDF reader has (one of the Adobe Asian fonts, not embedded): it carries the
# Chinese names and labels, and Latin text too, so one statement reads in either language.
PDF_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))


def _render_pdf(*, facility, inmate, month, opening, closing, lines) -> bytes:
    """The statement as a PDF, in the active language, as the HTML one is."""
    buffer = io.BytesIO()
    styles = getSampleStyleSheet()
    title_style = styles["Title"].clone("StatementTitle", fontName=PDF_FONT)
    text_style = styles["Normal"].clone("StatementText", fontName=PDF_FONT, leading=16)
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"{gettext('Statement')} {inmate.inmate_number} {month:%Y-%m}",
    )
    rows = [[gettext("Date"), gettext("What"), gettext("Account"), gettext("Amount")]] + [
        [line["when"], Paragraph(escape(line["what"]), text_style), line["account"], line["amount"]]
        for line in lines
    ]
    if not lines:
        rows.append(["", gettext("No money moved this month."), "", ""])
    table = Table(rows, colWidths=[100, 210, 70, 90], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), PDF_FONT),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
                ("ALIGN", (3, 0), (3, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    heading = gettext("%(facility)s — trust account statement") % {"facility": facility.name}
    who = f"{inmate.surname}{inmate.given_name} · {gettext('Inmate number')} {inmate.inmate_number}"
    document.build(
        [
            Paragraph(escape(heading), title_style),
            Paragraph(escape(f"{who} · {month:%Y-%m}"), text_style),
            Paragraph(
                escape(
                    f"{gettext('Opening balance')}: {opening} · "
                    f"{gettext('Closing balance')}: {closing}"
                ),
                text_style,
            ),
            Spacer(1, 12),
            table,
        ]
    )
    return buffer.getvalue()


def start_statements(
    *,
    facility_id: int,
    month: dt.date | None = None,
    now: dt.datetime | None = None,
    chunk_size: int | None = None,
    trigger: str = "schedule",
) -> ScheduledRun:
    """Plan the facility's statements for ``month`` (default: last month) as chunks of
    ``chunk_size`` inmates (default: the LEDGER_STATEMENTS_CHUNK_SIZE setting)."""
    now = now or timezone.now()
    chunk_size = chunk_size or settings.LEDGER_STATEMENTS_CHUNK_SIZE
    facility = Facility.objects.get(pk=facility_id)
    month = month or previous_month(facility, now)
    # A statement drawn again for a month detached for archive would lose its lines and
    # overwrite the one stored when the month still had its entries.
    if _month_bounds(month, facility.timezone)[0] < archive.archived_before():
        raise archive.MonthArchived(
            gettext("The statements of %(month)s are not drawn again: its entries are archived.")
            % {"month": f"{month:%Y-%m}"}
        )

    def pieces_of(run):
        ranges, inmates = inmate_id_chunks(facility_id, chunk_size)
        sizes = [chunk_size] * len(ranges)
        if ranges:
            sizes[-1] = inmates - chunk_size * (len(ranges) - 1)
        return [
            Piece(low, high, size=size) for (low, high), size in zip(ranges, sizes, strict=True)
        ], inmates

    return start_chunked_run(
        pieces_of=pieces_of,
        kind=ScheduledRun.Kind.STATEMENTS,
        facility=facility,
        month=month,
        trigger=trigger,
        now=now,
    )


def generate_statements(
    *,
    facility_id: int,
    month: dt.date | None = None,
    now: dt.datetime | None = None,
    chunk_size: int | None = None,
    trigger: str = "schedule",
) -> ScheduledRun:
    """Write (or rewrite) every inmate's statement for ``month`` (default: last month)."""
    return run_here(
        start_statements(
            facility_id=facility_id, month=month, now=now, chunk_size=chunk_size, trigger=trigger
        )
    )


def _render_chunk(run: ScheduledRun, claim: Claim) -> list[Statement]:
    """The chunk's statements, read and drawn before its (short) transaction."""
    facility = run.facility
    start, end = _month_bounds(run.month, facility.timezone)
    inmates = list(
        Inmate.objects.filter(
            facility_id=facility.pk, id__gt=claim.low_id, id__lte=claim.high_id, admitted_at__lt=end
        ).order_by("id")
    )
    if not inmates:
        return []
    reads_from = replica.alias_for_reads_that_can_wait()
    return _drawn_statements(facility, inmates, run.month, start, end, run.started_at, reads_from)


def _store_statements(run: ScheduledRun, claim: Claim, statements: list[Statement]) -> dict:
    """Upserted by (inmate, month): a chunk done again rewrites, never duplicates."""
    Statement.objects.bulk_create(
        statements,
        update_conflicts=True,
        unique_fields=["inmate", "month"],
        update_fields=["facility", "opening_fen", "closing_fen", "html", "pdf", "created_at"],
    )
    return {"statements": len(statements)}


def _finish_statements(run: ScheduledRun, counts: list[dict]) -> None:
    run.counts = summed(counts, ["statements"])
    run.progress_done = run.progress_total
    finish_run(run)


chunks.register_job(
    ScheduledRun.Kind.STATEMENTS,
    Job(prepare=_render_chunk, apply=_store_statements, finish=_finish_statements),
)


def _read_chunk(ids, start, end, using=DEFAULT_DB_ALIAS):
    """Each inmate's opening balance and the month's lines, read on ``using``."""
    in_list = ", ".join(["%s"] * len(ids))
    opening = defaultdict(int)
    lines = defaultdict(list)
    with sql.cursor(using) as cursor:
        cursor.execute(
            # Entries are dated as their transactions and partitioned by that date: filtering
            # on the entry's own date reads only the partitions before the month (the
            # opening) and the month's own (its lines).
            f"SELECT a.inmate_id, CAST(SUM(e.amount_fen) AS BIGINT) FROM ledger_entry e "  # noqa: S608 - placeholders only; values are bound
            f"JOIN ledger_account a ON a.id = e.account_id "
            f"WHERE a.inmate_id IN ({in_list}) AND e.created_at < %s GROUP BY a.inmate_id",
            [*ids, start],
        )
        opening.update(dict(cursor.fetchall()))
        # Months detached for archive count by their accounts' totals.
        cursor.execute(
            f"SELECT a.inmate_id, CAST(SUM(t.amount_fen) AS BIGINT) "  # noqa: S608 - placeholders only; values are bound
            f"FROM ledger_archivedaccounttotal t "
            f"JOIN ledger_archivedjournalmonth m ON m.id = t.archived_month_id "
            f"JOIN ledger_account a ON a.id = t.account_id "
            f"WHERE a.inmate_id IN ({in_list}) AND m.ends_at <= %s GROUP BY a.inmate_id",
            [*ids, start],
        )
        for inmate_id, archived_fen in cursor.fetchall():
            opening[inmate_id] = (opening[inmate_id] or 0) + archived_fen
        cursor.execute(
            f"SELECT a.inmate_id, t.created_at, t.kind, t.memo, a.kind, e.amount_fen "  # noqa: S608 - placeholders only; values are bound
            f"FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id "
            f"JOIN ledger_transaction t ON t.id = e.transaction_id "
            f"WHERE a.inmate_id IN ({in_list}) AND e.created_at >= %s AND e.created_at < %s "
            f"ORDER BY a.inmate_id, e.created_at, e.id",
            [*ids, start, end],
        )
        for inmate_id, created_at, kind, memo, account_kind, amount_fen in cursor.fetchall():
            lines[inmate_id].append((created_at, kind, memo, account_kind, amount_fen))
    return opening, lines


def _drawn_statements(
    facility, inmates, month, start, end, now, reads_from=DEFAULT_DB_ALIAS
) -> list[Statement]:
    try:
        opening, lines = _read_chunk([inmate.pk for inmate in inmates], start, end, reads_from)
    except DatabaseError:
        if reads_from == DEFAULT_DB_ALIAS:
            raise
        logger.warning("Statements could not read the replica: this chunk reads the primary")
        opening, lines = _read_chunk([inmate.pk for inmate in inmates], start, end)
    zone = ZoneInfo(facility.timezone)
    statements = []
    for inmate in inmates:
        opening_fen = opening[inmate.pk] or 0
        closing_fen = opening_fen + sum(line[4] for line in lines[inmate.pk])
        shown = _shown_lines(lines[inmate.pk], zone=zone, currency=facility.currency)
        context = {
            "facility": facility,
            "inmate": inmate,
            "month": month,
            "lines": shown,
            "opening": format_fen(opening_fen, facility.currency),
            "closing": format_fen(closing_fen, facility.currency),
        }
        statements.append(
            Statement(
                inmate=inmate,
                facility=facility,
                month=month,
                opening_fen=opening_fen,
                closing_fen=closing_fen,
                # A copy: the template's {% get_current_language %} writes into its context.
                html=render_to_string("ledger/statement.html", {**context}),
                pdf=_render_pdf(**context),
                created_at=now,
            )
        )
    return statements
