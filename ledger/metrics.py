"""The ledger's figures for ``/metrics`` (commissary.metrics), read when it is scraped: deposits
by state (held ones included), scheduled runs by kind and state, and the findings of the
latest reconciliation. One grouped query each; the deposits' one reads the status index."""

from django.db import connection
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


def deposit_figures():
    deposits = GaugeMetricFamily("commissary_deposits", "Deposits by state.", labels=["status"])
    amounts = GaugeMetricFamily(
        "commissary_deposits_amount_fen",
        "The deposits' amounts by state, in fen.",
        labels=["status"],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, COUNT(*), COALESCE(SUM(amount_fen), 0) FROM ledger_deposit "
            "GROUP BY status ORDER BY status"
        )
        for status, count, amount_fen in cursor.fetchall():
            deposits.add_metric([status], count)
            amounts.add_metric([status], int(amount_fen))
    return [deposits, amounts]


def scheduled_run_figures():
    runs = CounterMetricFamily(
        "commissary_scheduled_runs",
        "Runs of scheduled work by kind and outcome (failed and abandoned are failures).",
        labels=["kind", "status"],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, status, COUNT(*) FROM ledger_scheduledrun "
            "GROUP BY kind, status ORDER BY kind, status"
        )
        for kind, status, count in cursor.fetchall():
            runs.add_metric([kind, status], count)
    return [runs]


def reconciliation_figures():
    findings = GaugeMetricFamily(
        "commissary_reconciliation_findings",
        "Findings of the latest finished reconciliation, by check (none: all clean).",
        labels=["check"],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT check_name, COUNT(*) FROM ledger_reconciliationfinding WHERE run_id = ("
            "SELECT id FROM ledger_scheduledrun WHERE kind = 'reconciliation' "
            "AND status IN ('succeeded', 'found_problems') ORDER BY started_at DESC LIMIT 1) "
            "GROUP BY check_name ORDER BY check_name"
        )
        for check_name, count in cursor.fetchall():
            findings.add_metric([check_name], count)
    return [findings]
