import datetime as dt
import getpass

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ledger import archive


def month_argument(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError as error:
        raise CommandError(_("A month is written YYYY-MM, e.g. 2026-01.")) from error


def _system_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the process's user id
        return ""


class Command(BaseCommand):
    help = (
        "Detach the journal's oldest month for archive (PostgreSQL): its per-account totals are "
        "kept, its partition is left as a table of its own to dump and drop. Refused for a month "
        "that ended after last month began, without a clean reconciliation run since it ended, "
        "or with entries of it in the default partition."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "month",
            nargs="?",
            type=month_argument,
            help="YYYY-MM: the month to detach, which must be the oldest (default: the oldest).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be detached; change nothing."
        )
        parser.add_argument(
            "--by",
            default=_system_user(),
            help="Who runs it, kept with the archived month (default: the system user).",
        )

    def handle(self, *args, month=None, dry_run=False, by="", **options):
        try:
            if dry_run:
                plan = archive.plan_detach(month=month)
                entries, accounts, _sum_fen, _newest_id = archive.month_figures(plan)
                self.stdout.write(
                    _(
                        "Would detach %(month)s as table %(table)s: %(entries)d entries on "
                        "%(accounts)d accounts, kept as totals (reconciliation run of "
                        "%(started)s). Nothing was changed."
                    )
                    % {
                        "month": f"{plan.month:%Y-%m}",
                        "table": plan.table_name,
                        "entries": entries,
                        "accounts": accounts,
                        "started": f"{plan.reconciliation_run.started_at:%Y-%m-%d %H:%M}",
                    }
                )
                return
            archived = archive.detach_oldest_month(month=month, report=self.stdout.write, by=by)
        except archive.DetachRefused as refusal:
            raise CommandError(str(refusal.message)) from refusal
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Detached %(month)s: table %(table)s is no longer part of the journal. "
                    "Archive it with pg_dump, then drop it."
                )
                % {"month": f"{archived.month:%Y-%m}", "table": archived.table_name}
            )
        )
