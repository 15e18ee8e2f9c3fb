"""Sign-up with email verification, and lockout: repeated wrong passwords lock sign-in on the
family pages and on the admin, by username and address together (another address may still
sign in); every page sends a strict Content-Security-Policy and a Permissions-Policy."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from accounts.models import User
from tests.conftest import SITE_LANGUAGE_CODE
from tests.factories import StaffFactory
from tests.payments.helpers import PASSWORD, depositor

pytestmark = pytest.mark.django_db

EN = {"accept-language": "en"}


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 5


def test_sign_up_needs_the_emailed_link_before_signing_in(client):
    answer = client.post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
        headers=EN,
    )
    assert answer.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    assert client.get("/family/deposits/").status_code == 302  # not signed in yet
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    confirm_path = link.split("://", 1)[1].split("/", 1)[1]
    client.post("/" + confirm_path)
    assert EmailAddress.objects.get(user=user).verified


def _family_sign_in(client, email, password, address="192.0.2.10"):
    return client.post(
        "/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=address, headers=EN
    )


def test_family_sign_in_locks_after_repeated_wrong_passwords(client):
    user = depositor()
    for _ in range(5):
        _family_sign_in(client, user.email, "wrong password")
    locked = _family_sign_in(client, user.email, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Locked by username and address together: the family signs in from elsewhere.
    elsewhere = _family_sign_in(client, user.email, PASSWORD, address="198.51.100.20")
    assert elsewhere.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_unknown_account_locks_the_same_way(client):
    answers = [_family_sign_in(client, "nobody@example.com", "guess") for _ in range(6)]
    known = depositor()
    known_answers = [
        _family_sign_in(client, known.email, "guess", address="192.0.2.11") for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [a.status_code for a in known_answers]


def test_admin_sign_in_locks_after_repeated_wrong_passwords(client):
    staff = StaffFactory(is_superuser=True)

    def admin_sign_in(password, address="192.0.2.10"):
        return client.post(
            "/admin/login/?next=/admin/",
            {"username": staff.username, "password": password},
            REMOTE_ADDR=address,
            headers=EN,
        )

    for _ in range(5):
        admin_sign_in("wrong")
    locked = admin_sign_in("correct horse battery")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert admin_sign_in("correct horse battery", address="198.51.100.20").status_code == 302


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/admin/login/"])
def test_pages_send_a_strict_csp_and_a_permissions_policy(client, url):
    answer = client.get(url)
    policy = answer["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'self'" in policy
    assert "camera=()" in answer["Permissions-Policy"]


def test_home_speaks_chinese_by_default_and_english_when_asked(client, settings):
    settings.LANGUAGE_CODE = SITE_LANGUAGE_CODE  # the site's own default, not the suite's
    assert "给狱中亲友汇款" in client.get("/").content.decode()
    assert "Send money to someone inside" in client.get("/", headers=EN).content.decode()


def test_language_switcher_sets_the_language_for_later_pages(client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Send money to someone inside" in client.get("/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "给狱中亲友汇款" in client.get("/", headers=EN).content.decode()


def test_the_sign_up_page_points_to_sign_in_with_chinese_punctuation(client):
    page = client.get("/accounts/signup/", headers={"accept-language": "zh-hans"}).content.decode()
    assert "已经有账号？请" in page and "登录</a>。" in page
