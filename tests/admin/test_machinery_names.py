"""The machinery a superuser sees in the admin (django-axes' sign-in attempts, beside
django-celery-beat's schedules) is named in the reader's language in the app list that every
admin page shows: django-axes has no name of its own, so its label showed ("Axes")."""

import pytest

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "name"), [("zh-hans", "登录尝试记录"), ("en", "Sign-in attempts")]
)
def test_the_sign_in_attempts_app_is_named_in_the_reader_s_language(client, language, name):
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get("/admin/models/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert name in page
    assert ">Axes<" not in page and "AXES" not in page
