"""The provider check added to ``ledger.reconciliation.CHECKS``: the provider's settlements and
the ledger's deposits agree. Every payment the provider settled has a credited deposit (or a
refunded one, when the payment was refunded), every refunded payment a refunded deposit, and
every credited deposit made through a payment (a family's: it has a payment or a depositor)
has a settled payment.

Registered from ``PaymentsConfig.ready`` (``ledger.reconciliation.register_check``): payments
sits above the ledger, so the ledger never imports this module."""

from ledger.reconciliation import Check

PROVIDER_SETTLEMENT_CHECK = Check(
    name="provider_settlement_mismatch",
    description="Every payment the provider settled has a credited (or held for review) or "
    "refunded deposit, and every credited or held family deposit has a settled payment.",
    sql="""
    SELECT d.facility_id, d.id,
           CASE WHEN p.status = 'refunded' THEN 'refunded'
                WHEN p.status = 'settled' THEN 'credited or held'
                ELSE 'settled payment' END,
           CASE WHEN p.id IS NULL THEN 'no payment'
                WHEN p.status IN ('settled', 'refunded') THEN d.status
                ELSE p.status END
    FROM ledger_deposit d
    LEFT JOIN payments_payment p ON p.deposit_id = d.id
    WHERE (p.status = 'settled' AND d.status NOT IN ('credited', 'held'))
       OR (d.status = 'held' AND (p.id IS NULL OR p.status <> 'settled'))
       OR (p.status = 'refunded' AND d.status <> 'refunded')
       OR (d.status IN ('credited', 'refunded')
           AND (p.id IS NOT NULL OR d.depositor_id IS NOT NULL)
           AND (p.id IS NULL OR p.status NOT IN ('settled', 'refunded')))
    """,
    subject="deposit",
)
