"""Closing the account asks for the password through the same lockout as sign-in: wrong
passwords are counted, and once locked out even the right one is refused."""

import pytest

from accounts.models import User
from tests.payments.helpers import PASSWORD, depositor

pytestmark = pytest.mark.django_db


def _close(client, password):
    return client.post(
        "/family/account/",
        {"password": password, "understood": "on"},
        REMOTE_ADDR="192.0.2.44",
        headers={"accept-language": "en"},
    )


def test_twelve_wrong_passwords_then_the_right_one_do_not_close_the_account(client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    user = depositor()
    client.force_login(user)
    answers = [_close(client, f"wrong {n}").status_code for n in range(12)]
    assert answers[:4] == [200] * 4  # the form again: "This is not your password."
    assert set(answers[5:]) == {429}  # the lockout page
    assert _close(client, PASSWORD).status_code == 429
    assert User.objects.get(pk=user.pk).is_active


def test_the_right_password_closes_the_account(client):
    user = depositor()
    client.force_login(user)
    assert _close(client, PASSWORD).status_code == 302
    assert not User.objects.filter(pk=user.pk, is_active=True).exists()
