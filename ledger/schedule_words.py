"""The default schedules' names and descriptions: stored once in English, read in the reader's
language.

A schedule's name and description are stored as written: beat knows a schedule by its name,
and staff may rename one or write their own. For the defaults the system creates
(``ledger.schedules``, ``catalog.schedules``, ``monitoring.schedules``,
``reports.schedules``) the wording is fixed here, one English sentence per task (the
rollover's names its time zone). ``shown_name`` and ``shown_description`` read such wording
back and give it in the active language, as ``ledger.memos`` does for the journal's memos;
wording a person wrote or changed is shown as written, and so is the default wording of one
task stored on a schedule that runs another.
"""

import re

from django.utils.translation import gettext, gettext_noop

ROLLOVER_TASK = "ledger.tasks.roll_over_periods"

# {task: (name, description)} as the defaults are created and stored.
DEFAULTS: dict[str, tuple[str, str]] = {
    "ledger.tasks.reconcile_ledger": (
        gettext_noop("Nightly reconciliation"),
        gettext_noop("Checks journal, balances, periods and deposits agree; emails on findings."),
    ),
    "ledger.tasks.expire_stale_deposits": (
        gettext_noop("Expire unpaid deposits"),
        gettext_noop("Releases the cap room of deposits whose payment never came."),
    ),
    "payments.tasks.poll_pending_payments": (
        gettext_noop("Poll pending payments"),
        gettext_noop(
            "Asks payment providers about payments still pending, so a lost callback loses "
            "no money."
        ),
    ),
    "payments.tasks.retry_provider_calls": (
        gettext_noop("Retry provider calls"),
        gettext_noop(
            "Makes again the refunds and other payment-provider calls that failed, when each "
            "is due (backoff up to an hour); those that keep failing wait for staff."
        ),
    ),
    "payments.tasks.queue_unsent_receipts": (
        gettext_noop("Queue unsent receipts"),
        gettext_noop(
            "Queues the receipt email again for credited deposits of the last week whose "
            "receipt was never sent; the email itself still goes once."
        ),
    ),
    "ledger.tasks.create_journal_partitions": (
        gettext_noop("Journal partitions ahead"),
        gettext_noop(
            "Creates the journal's monthly partitions for this month and the next three "
            "(PostgreSQL); a missed run only leaves new entries in the default partition."
        ),
    ),
    "ledger.tasks.generate_monthly_statements": (
        gettext_noop("Monthly statements"),
        gettext_noop("Last month's statement for every inmate, HTML and PDF."),
    ),
    "catalog.tasks.escalate_overdue_disputes": (
        gettext_noop("Escalate overdue disputes"),
        gettext_noop(
            "Marks open disputes past their deadline as escalated and emails the facility "
            "administrators, once per dispute."
        ),
    ),
    "monitoring.tasks.refund_stale_holds": (
        gettext_noop("Refund held deposits not decided in time"),
        gettext_noop(
            "Refunds the held deposits nobody accepted or rejected within their facility's "
            "deadline."
        ),
    ),
    "monitoring.tasks.purge_monitoring_data": (
        gettext_noop("Purge monitoring data past its retention period"),
        gettext_noop("Deletes the monitoring records older than their retention period."),
    ),
    "reports.tasks.queue_staff_digests": (
        gettext_noop("Daily staff digest"),
        gettext_noop("Emails each staff member what waits at their facilities, if anything."),
    ),
}

_ROLLOVER_NAME = gettext_noop("Monthly rollover (%(timezone)s)")
_ROLLOVER = re.compile(r"Monthly rollover \((?P<timezone>[^()]+)\)")
_ROLLOVER_DESCRIPTION = gettext_noop("Closes the ended month's periods and opens the new month's.")


def default_name(task: str) -> str:
    """The stored name of ``task``'s default schedule (not the rollover's: ``rollover_name``)."""
    return DEFAULTS[task][0]


def default_description(task: str) -> str:
    if task == ROLLOVER_TASK:
        return _ROLLOVER_DESCRIPTION
    return DEFAULTS[task][1]


def rollover_name(timezone_name: str) -> str:
    """The stored name of the rollover schedule of one time zone."""
    return _ROLLOVER_NAME % {"timezone": timezone_name}


def shown_name(task: str, name: str) -> str:
    """``name`` in the active language when it is ``task``'s default wording, else as written."""
    if task == ROLLOVER_TASK:
        if match := _ROLLOVER.fullmatch(name):
            return gettext(_ROLLOVER_NAME) % match.groupdict()
        return name
    if task in DEFAULTS and name == DEFAULTS[task][0]:
        return gettext(name)
    return name


def shown_description(task: str, description: str) -> str:
    """``description`` in the active language when it is ``task``'s default, else as written."""
    known = task == ROLLOVER_TASK or task in DEFAULTS
    if description and known and description == default_description(task):
        return gettext(description)
    return description
