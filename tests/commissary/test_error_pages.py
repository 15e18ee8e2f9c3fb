"""The site's own 404, 403 and 500 pages, translated, for the family pages and the admin; the
500 page renders without touching the database (it may be what failed)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.utils import translation

from commissary import error_pages
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
ZH = {"accept-language": "zh-hans"}
EN = {"accept-language": "en"}


@pytest.fixture(autouse=True)
def _production(settings):
    settings.DEBUG = False


def test_a_missing_family_page_is_the_site_s_own_404_in_chinese_and_english(client):
    answer = client.get("/family/no-such-page/", headers=ZH)
    assert answer.status_code == 404
    text = answer.content.decode()
    assert "找不到页面" in text and 'href="/"' in text and "Not Found" not in text
    assert "Page not found" in client.get("/family/no-such-page/", headers=EN).content.decode()


def test_a_missing_admin_page_is_an_admin_page(client):
    client.force_login(StaffFactory())
    answer = client.get("/admin/no/such/page/", headers=ZH)
    assert answer.status_code == 404
    text = answer.content.decode()
    assert "找不到页面" in text and 'id="site-name"' in text and "返回工作首页" in text


def test_a_refused_admin_page_is_the_admin_403_in_chinese(client):
    client.force_login(StaffFactory())  # no role: may not export the audit trail
    answer = client.get("/admin/auditlog/logentry/export.csv", headers=ZH)
    assert answer.status_code == 403
    text = answer.content.decode()
    assert "无权访问" in text and 'id="site-name"' in text and "403 Forbidden" not in text


def test_the_family_403_page_is_translated():
    request = RequestFactory().get("/family/")
    request.user = AnonymousUser()
    with translation.override("zh-hans"):
        answer = error_pages.permission_denied(request, PermissionDenied())
    assert answer.status_code == 403 and "无权访问" in answer.content.decode()


@pytest.mark.parametrize("path", ["/family/", "/admin/"])
def test_the_500_page_renders_without_the_database(path, django_assert_num_queries):
    request = RequestFactory().get(path)  # no session, no user: nothing to read
    with translation.override("zh-hans"), django_assert_num_queries(0):
        answer = error_pages.server_error(request)
    text = answer.content.decode()
    assert answer.status_code == 500
    home = "/admin/" if path.startswith("/admin/") else "/"
    assert "出错了" in text and f'href="{home}"' in text
    with translation.override("en"):
        assert "Something went wrong" in error_pages.server_error(request).content.decode()


def test_an_unhandled_error_answers_with_the_500_page(client, settings):
    settings.ROOT_URLCONF = "tests.commissary.failing_urls"
    client.raise_request_exception = False
    answer = client.get("/fail", headers=ZH)
    assert answer.status_code == 500 and "出错了" in answer.content.decode()
