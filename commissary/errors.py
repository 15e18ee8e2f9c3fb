"""Project-wide domain errors (types only, no logic). Each has a stable machine ``code`` (the
kiosk API and pages map codes, never classes) and a human message. A service that raises one
has changed nothing. Messages are sentences for a clerk or a parent, translated."""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code = "domain_error"
    default_message = _("The operation was refused.")

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(str(self.message))


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_message = _("The amount must be a whole number of fen greater than zero.")


class MonthlyCapExceeded(DomainError):
    code = "monthly_cap_exceeded"
    default_message = _("This deposit would take the inmate over this month's deposit cap.")


class BalanceCapExceeded(DomainError):
    code = "balance_cap_exceeded"
    default_message = _("This would take the inmate over the balance cap.")


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    default_message = _("The inmate's spendable balance is too low.")


class AccountFrozen(DomainError):
    code = "account_frozen"
    default_message = _("The inmate's account is frozen.")


class InmateReleased(DomainError):
    code = "inmate_released"
    default_message = _("The inmate has been released; the account is closed.")


class InmateNotFound(DomainError):
    code = "not_found"
    default_message = _("No such inmate.")


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    default_message = _("This idempotency key was already used for a different request.")


class DepositNotPending(DomainError):
    code = "deposit_not_pending"
    default_message = _("The deposit is no longer awaiting payment.")


class DepositsHeldForReview(DomainError):
    code = "deposits_held_for_review"
    default_message = _(
        "Some of this inmate's deposits are held for review: accept or reject them first."
    )


class DepositNotFound(DomainError):
    code = "not_found"
    default_message = _("No such deposit.")


class TransactionNotFound(DomainError):
    code = "not_found"
    default_message = _("No such transaction.")


class RefundExceedsPurchase(DomainError):
    code = "refund_exceeds_purchase"
    default_message = _("The refund is larger than what is left to refund of the purchase.")


class ApprovalRequired(DomainError):
    code = "approval_required"
    default_message = _("An adjustment this large needs a second staff member's approval.")


class NotReversible(DomainError):
    code = "not_reversible"
    default_message = _("This transaction cannot be reversed; use the matching refund instead.")


class InvalidPolicy(DomainError):
    code = "invalid_policy"
    default_message = _("The facility policy is invalid.")


class ValidationFailed(DomainError):
    code = "validation_error"
    default_message = _("The request is invalid.")


class FacilityNotFound(DomainError):
    code = "not_found"
    default_message = _("No such facility.")


class GradeInUse(DomainError):
    code = "grade_in_use"
    default_message = _("Inmates hold this grade: give them another grade before deleting it.")


class NotPermitted(DomainError):
    code = "permission_denied"
    default_message = _("You are not allowed to do this.")


class DepositOverSingleLimit(DomainError):
    code = "deposit_over_single_limit"
    default_message = _("This deposit is larger than the facility allows in one deposit.")


class MonthlyDepositCountExceeded(DomainError):
    code = "monthly_deposit_count_exceeded"
    default_message = _(
        "The inmate has received as many deposits this month as the facility allows."
    )


# --- Commissary orders and kiosk sign-in (messages shown on the kiosk screen) ---------------


class SpendingLimitExceeded(DomainError):
    code = "spending_limit_exceeded"
    default_message = _("This order would take the inmate over the spending limit.")


class OutOfStock(DomainError):
    code = "out_of_stock"
    default_message = _("Not enough of a product is in stock for this order.")


class ProductRestricted(DomainError):
    code = "product_restricted"
    default_message = _("The inmate may not buy this product now.")


class ProductNotFound(DomainError):
    code = "not_found"
    default_message = _("No such product.")


class RepeatedRefusal(DomainError):
    """A refusal given before under the same idempotency key, raised again as it was given: its
    code and message (an order refused once stays refused under its key)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class OrderNotFound(DomainError):
    code = "not_found"
    default_message = _("No such order.")


class OrderStateConflict(DomainError):
    code = "order_state_conflict"
    default_message = _("The order is no longer in a state that allows this.")


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    default_message = _("The inmate number, card or PIN is wrong.")


class LockedOut(DomainError):
    code = "locked_out"
    default_message = _("Too many wrong PINs: kiosk sign-in is locked for a while.")

    def __init__(self, message: str | None = None, *, retry_after_seconds: int | None = None):
        super().__init__(message)
        # Whole seconds until the lock-out ends; the API sends it as ``Retry-After``.
        self.retry_after_seconds = retry_after_seconds


class SessionExpired(DomainError):
    code = "session_expired"
    default_message = _("The session has ended; sign in again.")
