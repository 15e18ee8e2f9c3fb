"""The refusals staff can meet in the admin, listed for ``makemessages`` so that the admin
shows them in the reader's language (``gettext(refused.message)``): the default message of
each ``commissary.errors`` type and the fixed messages the services raise. A message built
with names or numbers in it is shown as the service wrote it."""

from django.utils.translation import gettext_noop

MESSAGES = (
    gettext_noop("An adjustment this large needs a second staff member's approval."),
    gettext_noop("No such deposit."),
    gettext_noop("No such facility."),
    gettext_noop("No such inmate."),
    gettext_noop("No such transaction."),
    gettext_noop("The amount must be a whole number of fen greater than zero."),
    gettext_noop("The deposit is no longer awaiting payment."),
    gettext_noop("The facility policy is invalid."),
    gettext_noop("The inmate has been released; the account is closed."),
    gettext_noop("The inmate's account is frozen."),
    gettext_noop("The inmate's spendable balance is too low."),
    gettext_noop("The refund is larger than what is left to refund of the purchase."),
    gettext_noop("The request is invalid."),
    gettext_noop("This deposit would take the inmate over this month's deposit cap."),
    gettext_noop("This idempotency key was already used for a different request."),
    gettext_noop("This transaction cannot be reversed; use the matching refund instead."),
    gettext_noop("This would take the inmate over the balance cap."),
    gettext_noop("You are not allowed to do this."),
    gettext_noop("A reason is required."),
    gettext_noop("Less than that is held."),
    gettext_noop("The amount is too large."),
    gettext_noop("The facilities keep money in different currencies."),
    gettext_noop("The inmate is already at that facility."),
    gettext_noop("This transaction has already been reversed."),
    gettext_noop("Releasing this much would take spendable money over the balance cap."),
    gettext_noop("The account is already frozen."),
    gettext_noop("The account is not frozen."),
    gettext_noop(
        "Deposits are awaiting payment for this inmate; transfer once they have settled or expired."
    ),
    gettext_noop(
        "The approver must be another active trust officer assigned to the inmate's facility."
    ),
    gettext_noop("Only an active staff member assigned to the inmate's facility can do this."),
    gettext_noop("An inmate number and a surname are required."),
    gettext_noop("The housing unit belongs to another facility."),
)
