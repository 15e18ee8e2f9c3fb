"""The journal itself: accounts, transactions with their entries, monthly periods and the
account events (freeze, release, transfer, cap changes)."""

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from commissary.money import format_fen

from .. import memos
from ..exports import JournalResource
from ..models import (
    Account,
    AccountEvent,
    Entry,
    MonthlyPeriod,
    Transaction,
)
from ..selectors import account_balance_fen
from .base import ReadOnlyAdmin, ScopedExportMixin


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "facility",
        "inmate",
        "provider",
        "balance",
        "pending",
        "is_frozen",
        "is_closed",
    )
    list_filter = ("kind", "facility", "is_frozen", "is_closed")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    list_select_related = ("facility", "inmate")

    @admin.display(description=_("balance"))
    def balance(self, account):
        return format_fen(account_balance_fen(account=account), account.currency)

    @admin.display(description=_("pending deposits"))
    def pending(self, account):
        return format_fen(account.pending_fen, account.currency)


class EntryInline(FacilityScopedAdmin, admin.TabularInline):
    model = Entry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("amount"))
    def amount(self, entry):
        return format_fen(entry.amount_fen, entry.account.currency)


@admin.register(Transaction)
class TransactionAdmin(ScopedExportMixin, ReadOnlyAdmin):
    """The journal, newest first, each line with the amount it moved and between which
    accounts."""

    list_display = (
        "id",
        "created_at",
        "kind",
        "facility",
        "inmate",
        "amount_moved",
        "accounts_moved",
        "description",
        "created_by",
        "approved_by",
    )
    list_filter = ("kind", "facility")
    search_fields = ("idempotency_key", "inmate__inmate_number", "memo")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_select_related = ("facility", "inmate", "created_by", "approved_by")
    inlines = [EntryInline]
    resource_classes = [JournalResource]

    readonly_fields = ("description", "memo_as_written")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("entries__account__inmate")

    def get_fields(self, request, obj=None):
        # The memo in the reader's language beside the memo as it was written (the auditor's).
        shown = ("description", "memo_as_written")
        fields = [name for name in super().get_fields(request, obj) if name not in shown]
        at = fields.index("memo") if "memo" in fields else len(fields)
        return [*fields[:at], *shown, *fields[at + 1 :]]

    @admin.display(description=_("description"))
    def description(self, journal_transaction):
        return memos.shown_memo(journal_transaction.memo)

    @admin.display(description=_("memo (as written)"))
    def memo_as_written(self, journal_transaction):
        """The stored memo; one the system wrote is English, and says so (``lang``)."""
        memo = journal_transaction.memo
        if memos.is_system_memo(memo):
            return format_html('<span lang="en">{}</span>', memo)
        return memo

    @admin.display(description=_("amount moved"))
    def amount_moved(self, journal_transaction):
        entries = list(journal_transaction.entries.all())
        moved_fen = sum(entry.amount_fen for entry in entries if entry.amount_fen > 0)
        currency = entries[0].account.currency if entries else "CNY"
        return format_fen(moved_fen, currency)

    @admin.display(description=_("from → to"))
    def accounts_moved(self, journal_transaction):
        entries = list(journal_transaction.entries.all())
        taken = ", ".join(str(e.account) for e in entries if e.amount_fen < 0)
        given = ", ".join(str(e.account) for e in entries if e.amount_fen > 0)
        return f"{taken} → {given}"


@admin.register(MonthlyPeriod)
class MonthlyPeriodAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "received", "reserved", "cap", "closed_at")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number",)
    list_select_related = ("inmate", "facility")

    @admin.display(description=_("received"))
    def received(self, period):
        return format_fen(period.received_fen)

    @admin.display(description=_("reserved"))
    def reserved(self, period):
        return format_fen(period.reserved_fen)

    @admin.display(description=_("cap"))
    def cap(self, period):
        return format_fen(period.cap_fen)


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "facility", "inmate", "reason", "created_by")
    list_filter = ("kind", "facility")
    search_fields = ("inmate__inmate_number", "reason")
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    list_select_related = ("facility", "inmate", "created_by")
