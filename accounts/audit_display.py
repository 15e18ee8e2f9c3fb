"""The audit trail in words, in the reader's language: "Spending limit: ¥700.00 → ¥450.00",
not ``spending_limit_fen 70000 → 45000``.

An entry's ``changes`` keep what auditlog stored (field names, raw values: fen, choice values,
ids). Here each field becomes its model's translated label (a ``…_fen`` field without its
unit), an amount in fen becomes yuan, a choice its label, a related id the related object's
name, and an event (a sign-in, a data download) its translated name. Nothing is stored this
way: the trail keeps the raw values, so it reads right in any language.
"""

import re

from django.core.exceptions import FieldDoesNotExist
from django.utils.text import capfirst
from django.utils.translation import gettext, gettext_lazy, ngettext

from commissary.money import format_fen

from . import audit

# Values recorded under names that are no model field (see ``audit.record``'s callers).
EXTRA_LABELS = {
    "refunded_fen": gettext_lazy("Refunded"),
    "admitted": gettext_lazy("Inmates admitted"),
}
_UNIT = re.compile(r"\s*(\((fen|分)\)|（(fen|分)）|\bfen)\s*$", re.IGNORECASE)
ARROW = " → "


def _field(model, name):
    if model is None:
        return None
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def field_label(model, name: str) -> str:
    if name in audit.EVENT_LABELS:
        return str(audit.EVENT_LABELS[name])
    if name in EXTRA_LABELS:
        return str(EXTRA_LABELS[name])
    field = _field(model, name)
    label = str(getattr(field, "verbose_name", "") or name.replace("_", " "))
    if name.endswith("_fen"):
        label = _UNIT.sub("", label)
    return capfirst(label)


class _Related:
    """Names of related objects, read once per (model, id) however many entries name them."""

    def __init__(self):
        self.names: dict[tuple[type, object], str] = {}

    def name(self, model, pk) -> str:
        key = (model, pk)
        if key not in self.names:
            found = model._default_manager.filter(pk=pk).first()
            self.names[key] = str(found) if found is not None else f"#{pk}"
        return self.names[key]


def value_text(model, name: str, value, related: _Related | None = None) -> str:
    if value is None or value == "" or value == "None":
        return "—"
    if name.endswith("_fen"):
        try:
            return format_fen(int(value))
        except (TypeError, ValueError):
            return str(value)
    field = _field(model, name)
    if field is not None and field.choices:
        labels = {str(key): label for key, label in field.flatchoices}
        return str(labels.get(str(value), value))
    if field is not None and field.is_relation and field.many_to_one:
        return (related or _Related()).name(field.related_model, value)
    if isinstance(value, bool) or str(value) in ("True", "False"):
        return gettext("yes") if str(value) == "True" else gettext("no")
    return str(value)


def change_lines(entry, related: _Related | None = None) -> list[tuple[str, str, str]]:
    """``(label, before, after)`` for each change of the entry, in the reader's language."""
    model = entry.content_type.model_class() if entry.content_type_id else None
    related = related or _Related()
    lines = []
    for name, values in (entry.changes or {}).items():
        if isinstance(values, dict):  # a many-to-many change
            objects = ", ".join(str(item) for item in values.get("objects", []))
            lines.append((field_label(model, name), "", objects))
            continue
        before, after = (list(values) + [None, None])[:2]
        if name in audit.EVENT_LABELS:
            lines.append((field_label(model, name), "", str(after or "")))
            continue
        lines.append(
            (
                field_label(model, name),
                value_text(model, name, before, related),
                value_text(model, name, after, related),
            )
        )
    return lines


def changes_text(entry, related: _Related | None = None) -> str:
    """All changes on one line: "Spending limit: ¥700.00 → ¥450.00; Name: A → B"."""
    lines = change_lines(entry, related)
    return gettext("; ").join(line_text(*line) for line in lines)


def line_text(label: str, before: str, after: str) -> str:
    change = after if not before else f"{before}{ARROW}{after}"
    return gettext("%(label)s: %(change)s") % {"label": label, "change": change}


def summary(entry) -> str:
    """The list's short form: an event's name, or "2 changes: Spending limit, Name"."""
    event = (entry.additional_data or {}).get("event")
    if event in audit.EVENT_LABELS:
        return str(audit.EVENT_LABELS[event])
    if entry.action in (entry.Action.DELETE, entry.Action.ACCESS):
        return ""
    model = entry.content_type.model_class() if entry.content_type_id else None
    labels = [field_label(model, name) for name in (entry.changes or {})]
    count = len(labels)
    text = ngettext("%(count)d change: %(fields)s", "%(count)d changes: %(fields)s", count) % {
        "count": count,
        "fields": gettext(", ").join(labels),
    }
    return text if len(text) <= 90 else text[:88] + " …"


def related_names() -> _Related:
    return _Related()
