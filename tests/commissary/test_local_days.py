"""No code takes the server's or UTC's date for a facility's "today".

A facility's today and this month come from ``facilities.models.local_date`` / ``local_month``
(its own timezone). ``now().date()`` on an aware UTC instant is the UTC date, a day behind in
Beijing from 00:00 to 08:00; ``date.today()`` and a zone-less ``localdate()`` are the server's.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["accounts", "catalog", "commissary", "facilities", "family", "kiosk", "ledger"]
APPS += ["monitoring", "payments", "reports", "bench"]
FORBIDDEN = re.compile(r"now\(\)\.date\(\)|date\.today\(\)|localdate\(\s*\)")


def test_no_module_takes_the_server_date_for_today():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for app in APPS
        if (ROOT / app).is_dir()
        for path in sorted((ROOT / app).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
