"""The demo's family user can sign in with the credentials file's email and password, is
linked to a demo inmate, has a few paid deposits, and a second seed changes nothing."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import DepositorLink
from ledger.models import Deposit
from ledger.reconciliation import run_checks
from payments.models import Payment

pytestmark = pytest.mark.django_db


def _seed(path):
    call_command(
        "seed_demo",
        "--inmates=3",
        "--seed=family-demo",
        f"--credentials-out={path}",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    return json.loads(path.read_text())


def test_demo_family_user_signs_in_linked_with_past_deposits(client, tmp_path):
    credentials = _seed(tmp_path / "demo.json")
    family = credentials["depositor"]
    assert set(credentials) >= {"staff", "depositor", "kiosk", "inmates"}
    [linked] = family["linked"]
    link = DepositorLink.objects.get(depositor__username=family["username"])
    assert link.is_approved and link.inmate.inmate_number == linked["inmate_number"]
    deposits = Deposit.objects.filter(depositor=link.depositor)
    assert deposits.count() == 3
    assert all(d.status == "credited" for d in deposits)
    assert Payment.objects.filter(deposit__in=deposits, status="settled").count() == 3
    assert run_checks() == []

    answer = client.post(
        "/accounts/login/", {"login": family["email"], "password": family["password"]}
    )
    assert answer.status_code == 302
    assert client.session["_auth_user_id"] == str(link.depositor_id)

    again = _seed(tmp_path / "demo.json")
    assert again["depositor"] == family
    assert Deposit.objects.filter(depositor=link.depositor).count() == 3
