"""Depositors are known by their email alone: no made-up username on pages, in emails or to
staff; the sign-up email speaks in the site's name, in one language."""

import re

import pytest
from django.core import mail
from django.utils import translation

from accounts.models import User
from accounts.roles import TRUST_OFFICER, assign_role
from family.adapter import SITE_NAME
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.payments.helpers import PASSWORD, approved_link

pytestmark = pytest.mark.django_db


def _sign_up(client, email, language):
    return client.post(
        "/accounts/signup/",
        {"email": email, "password1": PASSWORD, "password2": PASSWORD},
        headers={"accept-language": language},
    )


def test_a_new_depositors_username_is_their_email(client):
    _sign_up(client, "wang.mei@example.com", "en")
    user = User.objects.get(email="wang.mei@example.com")
    assert user.username == "wang.mei@example.com"
    assert str(user) == "wang.mei@example.com"


def test_an_email_longer_than_a_username_still_signs_up(client):
    email = f"{'x' * 150}@example.com"
    _sign_up(client, email, "en")
    user = User.objects.get(email=email)
    assert user.username.startswith("depositor-")


def test_the_sign_up_email_in_chinese_has_no_english_greeting_nor_host(client):
    _sign_up(client, "li.na@example.com", "zh-hans")
    message = mail.outbox[-1]
    text = message.subject + message.body
    assert "Hello" not in text and "127.0.0.1:8000" not in message.subject
    with translation.override("zh-hans"):
        assert str(SITE_NAME) in message.body
    assert "li.na" not in message.body.replace("li.na@example.com", "")


def test_the_sign_up_email_in_english_names_the_site(client):
    _sign_up(client, "zhao.lei@example.com", "en")
    message = mail.outbox[-1]
    assert "Commissary" in message.body
    assert not re.search(r"[\u4e00-\u9fff]", message.subject + message.body)


def test_staff_see_the_depositors_email_not_a_username(client):
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    user = User.objects.create_user(username="wang.mei", email="wm@example.com", password="x")
    approved_link(user, inmate)
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, TRUST_OFFICER)
    client.force_login(officer)
    page = client.get("/admin/accounts/depositorlink/").content.decode()
    assert "wm@example.com" in page and "wang.mei" not in page
