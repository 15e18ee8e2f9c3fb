"""The journal in the admin: everything read-only. Money changes only through services
(corrections are reversing transactions), so no admin form can write a balance."""

from django.contrib import admin

from .models import Account, Deposit, Entry, MonthlyPeriod, Transaction
from .money import format_fen
from .selectors import account_balance_fen


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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

    @admin.display(description="balance")
    def balance(self, account):
        return format_fen(account_balance_fen(account=account), account.currency)

    @admin.display(description="pending deposits")
    def pending(self, account):
        return format_fen(account.pending_fen, account.currency)


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="amount")
    def amount(self, entry):
        return format_fen(entry.amount_fen, entry.account.currency)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "facility",
        "inmate",
        "memo",
        "created_by",
        "approved_by",
    )
    list_filter = ("kind", "facility")
    search_fields = ("idempotency_key", "inmate__inmate_number", "memo")
    date_hierarchy = "created_at"
    list_select_related = ("facility", "inmate", "created_by", "approved_by")
    inlines = [EntryInline]


@admin.register(MonthlyPeriod)
class MonthlyPeriodAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "received", "reserved", "cap", "closed_at")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number",)
    list_select_related = ("inmate", "facility")

    @admin.display(description="received")
    def received(self, period):
        return format_fen(period.received_fen)

    @admin.display(description="reserved")
    def reserved(self, period):
        return format_fen(period.reserved_fen)

    @admin.display(description="cap")
    def cap(self, period):
        return format_fen(period.cap_fen)


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "created_at",
        "inmate",
        "amount",
        "fee",
        "status",
        "provider",
        "expires_at",
    )
    list_filter = ("status", "provider", "facility")
    search_fields = ("reference", "inmate__inmate_number", "provider_reference")
    date_hierarchy = "created_at"
    list_select_related = ("inmate",)

    @admin.display(description="amount")
    def amount(self, deposit):
        return format_fen(deposit.amount_fen, deposit.currency)

    @admin.display(description="fee")
    def fee(self, deposit):
        return format_fen(deposit.fee_fen, deposit.currency)
