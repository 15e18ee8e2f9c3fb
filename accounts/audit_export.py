"""The audit trail as CSV, for an auditor's spreadsheet: UTF-8 with a byte-order mark (so Excel
and WPS read the Chinese as Chinese), one row per entry, values in words and yuan as on the page
(``accounts.audit_display``), in the reader's language and time zone.

A cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage
return: CSV injection) gets a leading single quote, so an object name or a reason typed by
anyone is only ever text.
"""

import csv
from collections.abc import Iterable, Iterator

from django.utils import timezone
from django.utils.translation import gettext

from . import audit, audit_display

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2_000


def safe_cell(value) -> str:
    """The cell's text, with a single quote in front when a spreadsheet would read it as a
    formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Line:
    """A file-like target for ``csv.writer`` that hands back each line it is given."""

    def write(self, line: str) -> str:
        return line


def _action_label(entry) -> str:
    event = (entry.additional_data or {}).get("event")
    if event in audit.EVENT_LABELS:
        return str(audit.EVENT_LABELS[event])
    return str(entry.get_action_display())


def csv_lines(entries: Iterable, facility_names: dict[int, str]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff"
    yield writer.writerow(
        [
            gettext("Time"),
            gettext("Facility"),
            gettext("Person"),
            gettext("Address"),
            gettext("Action"),
            gettext("Object type"),
            gettext("Object"),
            gettext("Changes"),
        ]
    )
    related = audit_display.related_names()
    for entry in entries.iterator(chunk_size=CHUNK):
        model = entry.content_type.model_class()
        facility_id = (entry.additional_data or {}).get("facility_id")
        person = entry.actor.get_username() if entry.actor_id else entry.actor_email or ""
        row = [
            timezone.localtime(entry.timestamp).strftime("%Y-%m-%d %H:%M:%S"),
            facility_names.get(facility_id, "") if facility_id is not None else "",
            person,
            entry.remote_addr or "",
            _action_label(entry),
            str(model._meta.verbose_name) if model is not None else entry.content_type.model,
            entry.object_repr,
            audit_display.changes_text(entry, related),
        ]
        yield writer.writerow([safe_cell(value) for value in row])
