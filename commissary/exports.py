"""Spreadsheet-safe exports: every CSV cell a person may have typed goes through
``safe_cell``, so a spreadsheet never runs it as a formula (OWASP's rule for CSV injection:
a cell starting with ``= + - @``, a tab or a carriage return is prefixed with a quote)."""

import csv

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(filename: str, header: list[str], rows) -> HttpResponse:
    """A CSV download in UTF-8 with a byte-order mark (so spreadsheet programs read Chinese),
    every cell made safe."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return response
