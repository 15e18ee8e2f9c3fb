"""The admin in Chinese and English: every label of the project's models, every action,
message and report heading has a zh-hans translation, the catalogue is compiled by the
project's own set-up, and the language switcher changes the pages' language."""

import re
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise

from tests.factories import StaffFactory
from tests.ledger.helpers import deposit

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
PROJECT_APPS = ("accounts", "facilities", "ledger", "catalog", "payments", "kiosk")


def _project_models():
    for label in PROJECT_APPS:
        yield from apps.get_app_config(label).get_models()


def _model_labels():
    """What the admin, the audit trail and the work queue show of the project's models: app
    and model names, field labels and help texts, choices. Fields a library declares (the
    audit entry's, Django's user fields) come with the library's own words."""
    for label in PROJECT_APPS:
        yield apps.get_app_config(label).verbose_name
    for model in _project_models():
        opts = model._meta
        yield from (opts.verbose_name, opts.verbose_name_plural)
        for field in opts.get_fields():
            if not hasattr(field, "verbose_name") or field.auto_created:
                continue
            if field.model.__module__.split(".")[0] not in PROJECT_APPS:
                continue
            yield field.verbose_name
            if getattr(field, "help_text", None):
                yield field.help_text
            yield from (text for _value, text in getattr(field, "choices", None) or [])


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogue():
    """scripts/test compiles the translations; a bare pytest run compiles them here."""
    po, mo = CATALOGUE / "django.po", CATALOGUE / "django.mo"
    if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
        subprocess.run(  # noqa: S603 - the project's own script
            [Path(settings.BASE_DIR) / "scripts" / "compile-translations"], check=True
        )
        translation.trans_real._translations = {}
        translation.trans_real._active = translation.trans_real.Local()


def test_every_catalogue_entry_is_translated():
    text = (CATALOGUE / "django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text
    untranslated = re.findall(r'msgid "(.+)"\nmsgstr ""\n\n', text)
    assert untranslated == []


def test_every_model_label_of_the_project_reads_in_chinese():
    labels = list(_model_labels())
    assert sorted(str(label) for label in labels if not isinstance(label, Promise)) == []
    with translation.override("en"):
        english = [str(label) for label in labels]
    with translation.override("zh-hans"):
        chinese = [str(label) for label in labels]
    missing = sorted({en for en, zh in zip(english, chinese, strict=True) if en == zh})
    assert missing == []


@pytest.mark.django_db
def test_the_inmate_list_and_its_actions_read_in_chinese(client, site_a):
    deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["facility_admin"])
    page = client.get("/admin/facilities/inmate/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = page.content.decode()
    assert "释放所选在押人员（支付余额并关闭账户）" in text
    assert "编号" in text and "可用" in text and "¥123.45" in text


@pytest.mark.django_db
def test_the_language_switcher_changes_the_admin_language(client, site_a):
    client.force_login(site_a.staff["trust_officer"])
    english = client.get("/admin/ledger/staffrequest/add/").content.decode()
    assert "Ask for a money action" in english
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    chinese = client.get("/admin/ledger/staffrequest/add/").content.decode()
    assert "申请资金操作" in chinese and "Ask for a money action" not in chinese


@pytest.mark.django_db
def test_a_refusal_reads_as_a_chinese_sentence(client, site_a):
    client.force_login(site_a.staff["trust_officer"])
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    page = client.post(
        "/admin/ledger/staffrequest/add/",
        {
            "inmate": site_a.inmate.pk,
            "kind": "hold",
            "amount": "5.00",
            "reason": "x",
            "confirm": "1",
        },
    )
    assert "该在押人员的可用余额不足。" in page.content.decode()


@pytest.mark.django_db
def test_the_dashboard_reads_in_chinese(client, site_a):
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/reports/dashboard/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "信托资金总额" in page.content.decode() and "每日入账汇款" in page.content.decode()


def test_no_model_list_reads_as_a_singular_with_an_s_added_in_chinese():
    """Django's default plural appends "s" to the singular, a translated one included."""
    with translation.override("zh-hans"):
        plurals = {str(model._meta.verbose_name_plural) for model in _project_models()}
    assert sorted(p for p in plurals if re.search(r"[^\x00-\x7f]s$", p)) == []


def test_from_and_to_read_by_their_page_not_by_whichever_catalogue_came_first():
    """The audit trail's change table, the transfer page and the family's receipt all say
    "From" or "To", meaning different things."""
    with translation.override("zh-hans"):
        assert (translation.gettext("From"), translation.gettext("To")) == ("原值", "新值")
        assert translation.pgettext("transfer", "From") == "原监所"
        assert translation.pgettext("deposit recipient", "To") == "收款人"


@pytest.mark.django_db
def test_the_audit_trails_change_table_reads_old_and_new_values_in_chinese(client, site_a):
    from auditlog.models import LogEntry

    client.force_login(site_a.staff["facility_admin"])
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    entry = LogEntry.objects.get_for_object(site_a.facility).first() or LogEntry.objects.first()
    page = client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()
    assert "原值" in page and "新值" in page and "原监所" not in page


def test_a_form_sent_back_with_errors_reads_in_chinese_title_and_reasons(client, site_a):
    """The page title of a form with errors ("Error: …", missing from Django's catalogue) and
    a restriction whose kind lacks its target (the database constraint would only name
    itself, "restriction_kind_matches_target") read in Chinese, at the field."""
    from catalog.models import Restriction

    client.force_login(site_a.staff["clerk"])
    answer = client.post(
        "/admin/catalog/restriction/add/",
        {"inmate": site_a.inmate.pk, "kind": "category", "reason": "违反监规"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    page = answer.content.decode()
    assert answer.status_code == 200 and not Restriction.objects.exists()
    title = re.search(r"<title>(.*?)</title>", page, re.DOTALL).group(1)
    assert title.startswith("错误：") and "Error" not in title
    assert "请选择禁购的类别。" in page
    assert "restriction_kind_matches_target" not in page
    with translation.override("en"):
        suspension = Restriction(inmate=site_a.inmate, kind="suspension", reason="x")
        with pytest.raises(Exception, match="needs the date and time it ends"):
            suspension.full_clean()


@pytest.mark.django_db
def test_the_admins_page_titles_have_no_gaps_around_a_chinese_model_name(client, site_a):
    credited = deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["facility_admin"])
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}

    def title(url):
        page = client.get(url, **zh).content.decode()
        return re.search(r"<h1>(.*?)</h1>", page, re.DOTALL).group(1).strip()

    assert title("/admin/facilities/inmate/") == "选择在押人员来修改"
    assert title("/admin/facilities/inmate/add/") == "增加在押人员"
    assert title(f"/admin/facilities/inmate/{site_a.inmate.pk}/change/") == "修改在押人员"
    assert title(f"/admin/ledger/deposit/{credited.pk}/change/") == "查看汇款"


@pytest.mark.django_db
@pytest.mark.parametrize("max_per_order", ("0", "1001"))
def test_a_products_limit_per_order_out_of_range_reads_as_a_sentence(client, site_a, max_per_order):
    """The database's product_max_per_order_range would only name itself."""
    from catalog.models import Category, Product

    category = Category.objects.create(code="soap", name_zh="洗护", name_en="Toiletries")
    client.force_login(site_a.staff["clerk"])
    answer = client.post(
        "/admin/catalog/product/add/",
        {
            "sku": "SOAP-1",
            "name_zh": "肥皂",
            "name_en": "Soap",
            "category": category.pk,
            "price": "3.50",
            "cost": "3.00",
            "is_active": "on",
            "max_per_order": max_per_order,
            "offers-TOTAL_FORMS": "0",
            "offers-INITIAL_FORMS": "0",
        },
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    page = answer.content.decode()
    assert answer.status_code == 200 and not Product.objects.exists()
    assert "每单限购数量须在 1 至 1,000 之间。" in page
    assert "product_max_per_order_range" not in page


@pytest.mark.django_db
def test_a_rules_percent_over_100_reads_as_a_sentence(client, site_a):
    """The database's rule_percent_at_most_100 would only name itself."""
    from accounts.roles import SECURITY_OFFICER, assign_role
    from monitoring.models import Rule

    officer = StaffFactory(facilities=[site_a.facility])
    assign_role(officer, SECURITY_OFFICER)
    client.force_login(officer)
    answer = client.post(
        "/admin/monitoring/rule/add/",
        {
            "facility": site_a.facility.pk,
            "kind": Rule.Kind.NEAR_MONTHLY_CAP,
            "percent": "150",
            "is_active": "on",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    page = answer.content.decode()
    assert answer.status_code == 200 and not Rule.objects.exists()
    assert "最多为 100%。" in page
    assert "rule_percent_at_most_100" not in page


@pytest.mark.django_db
def test_a_stock_below_zero_reads_as_a_sentence(client, site_a):
    """The database's facility_product_stock_gte_0 would only name itself."""
    from catalog.models import FacilityProduct
    from tests.catalog.helpers import product_at

    product = product_at(site_a.facility, stock=7)
    offer = FacilityProduct.objects.get(product=product, facility=site_a.facility)
    client.force_login(site_a.staff["clerk"])
    answer = client.post(
        f"/admin/catalog/facilityproduct/{offer.pk}/change/",
        {"is_available": "on", "stock": "-5"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    page = answer.content.decode()
    assert answer.status_code == 200, page[:2000]
    assert "库存不能小于零。" in page
    assert "facility_product_stock_gte_0" not in page
    offer.refresh_from_db()
    assert offer.stock == 7
