"""CSV exports of the journal and the deposits from the admin (django-import-export), for
auditors and trust officers. The rows are the admin list's own (``get_queryset``), so the
facility scope, the search and the filters apply; amounts are exact yuan, as numbers. Text
cells (memos, names) are escaped against formula injection (``commissary.spreadsheets``)."""

from import_export import fields

from commissary.spreadsheets import SafeExportResource
from commissary.spreadsheets import money_cell as yuan

from . import memos
from .models import Deposit, Transaction


class JournalResource(SafeExportResource):
    facility = fields.Field(attribute="facility__code", column_name="facility")
    inmate = fields.Field(attribute="inmate__inmate_number", column_name="inmate")
    amount = fields.Field(column_name="amount (yuan)")
    accounts = fields.Field(column_name="from -> to")
    created_by = fields.Field(attribute="created_by__username", column_name="created by")
    approved_by = fields.Field(attribute="approved_by__username", column_name="approved by")
    description = fields.Field(column_name="description")

    class Meta:
        model = Transaction
        fields = (
            "id",
            "created_at",
            "kind",
            "facility",
            "inmate",
            "amount",
            "accounts",
            "memo",
            "description",
            "created_by",
            "approved_by",
        )
        export_order = fields

    def dehydrate_amount(self, journal_transaction):
        return yuan(
            sum(e.amount_fen for e in journal_transaction.entries.all() if e.amount_fen > 0)
        )

    def dehydrate_description(self, journal_transaction):
        """The memo in the exporting reader's language; ``memo`` keeps it as written."""
        return memos.shown_memo(journal_transaction.memo)

    def dehydrate_accounts(self, journal_transaction):
        entries = list(journal_transaction.entries.all())
        taken = ", ".join(str(e.account) for e in entries if e.amount_fen < 0)
        given = ", ".join(str(e.account) for e in entries if e.amount_fen > 0)
        return f"{taken} -> {given}"


class DepositResource(SafeExportResource):
    facility = fields.Field(attribute="facility__code", column_name="facility")
    inmate = fields.Field(attribute="inmate__inmate_number", column_name="inmate")
    amount = fields.Field(column_name="amount (yuan)")
    fee = fields.Field(column_name="fee (yuan)")

    class Meta:
        model = Deposit
        fields = (
            "reference",
            "created_at",
            "resolved_at",
            "status",
            "provider",
            "provider_reference",
            "facility",
            "inmate",
            "amount",
            "fee",
        )
        export_order = fields

    def dehydrate_amount(self, deposit):
        return yuan(deposit.amount_fen)

    def dehydrate_fee(self, deposit):
        return yuan(deposit.fee_fen)
