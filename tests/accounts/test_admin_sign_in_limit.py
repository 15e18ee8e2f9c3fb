"""The admin's sign-in is limited per address as well as locked per username and address:
one address trying many usernames waits, while staff elsewhere sign in as usual."""

import pytest

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

EN = {"accept-language": "en"}
ATTACKER, ELSEWHERE = "203.0.113.7", "198.51.100.30"


def _admin_sign_in(client, username, password, address):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        headers=EN,
    )


def test_thirty_usernames_from_one_address_are_stopped_after_the_limit(client, settings):
    settings.ADMIN_SIGN_IN_FAILURES_PER_ADDRESS = "20/h"
    staff = StaffFactory(is_superuser=True)
    answers = [
        _admin_sign_in(client, f"guess{n}", "wrong", ATTACKER).status_code for n in range(30)
    ]
    assert answers[:20] == [200] * 20  # the form again, with its error
    assert answers[20:] == [429] * 10
    # Even the right password waits at that address ...
    refused = _admin_sign_in(client, staff.username, "correct horse battery", ATTACKER)
    assert refused.status_code == 429
    assert "Too many failed sign-ins from your address" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # ... while the staff member signs in from elsewhere.
    assert _admin_sign_in(client, staff.username, "correct horse battery", ELSEWHERE).status_code
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_successful_sign_ins_do_not_count_against_the_address(client, settings):
    settings.ADMIN_SIGN_IN_FAILURES_PER_ADDRESS = "3/h"
    staff = StaffFactory(is_superuser=True)
    for _ in range(5):
        answer = _admin_sign_in(client, staff.username, "correct horse battery", ATTACKER)
        assert answer.status_code == 302
        client.logout()
