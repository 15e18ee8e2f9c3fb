"""A scheduled run's chunks in the admin (ledger.admin.runs): how many are done, claimed and
waiting on the list, each chunk on the run's page with who holds its claim and since when, an
expired claim flagged; shown to whoever may view runs, in the reader's language, and changed or
deleted by nobody."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from ledger.models import BatchChunk, ScheduledRun

pytestmark = pytest.mark.django_db

LIST = "/admin/ledger/scheduledrun/"
CLAIM_SECONDS = 300


@pytest.fixture
def run(site_a, settings):
    """A rollover at site A cut into five chunks: one done, one held by a live claim, one whose
    claim expired (its worker died), one waiting, one failed."""
    settings.LEDGER_CHUNK_CLAIM_SECONDS = CLAIM_SECONDS
    now = timezone.now()
    run = ScheduledRun.objects.create(
        kind=ScheduledRun.Kind.ROLLOVER, facility=site_a.facility, started_at=now
    )
    rows = [
        {"state": "done", "worker": "101@money1", "claimed_at": now, "finished_at": now},
        {"state": "claimed", "worker": "202@money2", "claimed_at": now - dt.timedelta(seconds=30)},
        {
            "state": "claimed",
            "worker": "303@money3",
            "claimed_at": now - dt.timedelta(seconds=CLAIM_SECONDS + 120),
        },
        {"state": "pending"},
        {"state": "failed", "worker": "404@money4", "claimed_at": now, "error": "disk full"},
    ]
    for number, fields in enumerate(rows, start=1):
        BatchChunk.objects.create(
            run=run,
            number=number,
            low_id=(number - 1) * 1000,
            high_id=number * 1000,
            size=1000,
            attempt=1 if fields.get("worker") else 0,
            **fields,
        )
    return run


def _chunk_table(page: str) -> str:
    """The chunks' inline on the run's page."""
    start = page.index('id="chunks-group"')
    return page[start : page.index("</fieldset>", start)]


def test_the_list_counts_each_runs_chunks_by_state_and_flags_expired_claims(client, site_a, run):
    client.force_login(site_a.staff["trust_officer"])

    page = client.get(LIST).content.decode()

    assert "1 done · 2 claimed · 1 waiting · 1 failed" in page
    assert "1 claim expired" in page


def test_the_runs_page_shows_each_chunk_who_holds_it_and_the_expired_claim(client, site_a, run):
    client.force_login(site_a.staff["auditor"])

    answer = client.get(f"{LIST}{run.pk}/change/")

    assert answer.status_code == 200
    table = _chunk_table(answer.content.decode())
    for worker in ("101@money1", "202@money2", "303@money3", "404@money4"):
        assert worker in table
    assert "inmate ids 2000 &lt; id ≤ 3000" in table
    assert "Held for 0\xa0minutes, expires in 4\xa0minutes" in table
    assert table.count("chunk-claim-expired") == 1
    assert "Expired 2\xa0minutes ago: another worker may take it over" in table
    assert "disk full" in table
    # Read-only: no inputs for the chunks, no way to add or delete one.
    assert not re.search(r'<(input(?![^>]*type="hidden")|select|textarea)\b', table)
    assert "DELETE" not in table
    assert "add-row" not in table


def test_nobody_changes_or_deletes_a_chunk_through_the_admin(client, admin_user, run):
    client.force_login(admin_user)
    before = list(BatchChunk.objects.order_by("number").values())

    change = client.post(
        f"{LIST}{run.pk}/change/",
        {
            "chunks-TOTAL_FORMS": "5",
            "chunks-INITIAL_FORMS": "5",
            "chunks-0-id": str(run.chunks.get(number=1).pk),
            "chunks-0-state": "pending",
            "chunks-0-DELETE": "on",
        },
    )
    delete = client.post(f"{LIST}{run.pk}/delete/", {"post": "yes"})

    assert change.status_code == 403
    assert delete.status_code == 403
    # BatchChunk has no admin screen of its own either.
    assert client.get("/admin/ledger/batchchunk/").status_code == 404
    assert list(BatchChunk.objects.order_by("number").values()) == before


def test_a_role_that_may_not_view_runs_gets_403_and_never_sees_the_chunks(client, site_a, run):
    client.force_login(site_a.staff["clerk"])

    assert client.get(f"{LIST}{run.pk}/change/").status_code == 403
    assert client.get(LIST).status_code == 403


def test_another_facilitys_staff_do_not_see_the_run_or_its_chunks(client, site_b, run):
    client.force_login(site_b.staff["trust_officer"])

    assert client.get(f"{LIST}{run.pk}/change/").status_code == 404
    assert "303@money3" not in client.get(LIST).content.decode()


def test_the_chunks_read_in_chinese(client, site_a, run):
    client.force_login(site_a.staff["trust_officer"])

    listing = client.get(LIST, headers={"accept-language": "zh-hans"}).content.decode()
    page = client.get(
        f"{LIST}{run.pk}/change/", headers={"accept-language": "zh-hans"}
    ).content.decode()

    assert "1 个已完成 · 2 个处理中 · 1 个待领取 · 1 个失败" in listing
    assert "1 个领取已过期" in listing
    table = _chunk_table(page)
    assert "批处理分块" in table
    assert "领取时间" in table and "工作进程" in table
    assert "已过期" in table and "其他工作进程可以接手" in table
    assert "Expired" not in table and "Held for" not in table


def test_a_runs_status_trigger_and_counts_read_in_words_in_chinese(client, site_a, run):
    """What started a run, what it counted and its state are stored as codes; the run's page,
    its title and each chunk's row read them in the reader's language."""
    run.trigger = "manual"
    run.status = ScheduledRun.Status.SUCCEEDED
    run.counts = {"periods_closed": 3, "periods_opened": 4}
    run.save()
    client.force_login(site_a.staff["trust_officer"])

    page = client.get(
        f"{LIST}{run.pk}/change/", headers={"accept-language": "zh-hans"}
    ).content.decode()
    listing = client.get(LIST, headers={"accept-language": "zh-hans"}).content.decode()

    assert "(成功)" in page and "(succeeded)" not in page
    assert "手动" in page and "手动" in listing
    assert "关闭的月度期间: 3; 开启的月度期间: 4" in page
    assert "periods_closed" not in page and "periods_closed" not in listing
    assert "(done)" not in page and "(已完成)" in page


def test_a_reconciliations_mode_reads_in_words(client, site_a):
    run = ScheduledRun.objects.create(
        kind=ScheduledRun.Kind.RECONCILIATION,
        started_at=timezone.now(),
        counts={"findings": 0, "mode": "exact"},
    )
    client.force_login(site_a.staff["trust_officer"])

    english = client.get(f"{LIST}{run.pk}/change/", headers={"accept-language": "en"})
    chinese = client.get(f"{LIST}{run.pk}/change/", headers={"accept-language": "zh-hans"})

    assert "findings: 0; mode: every exact query" in english.content.decode()
    assert "对账发现: 0; 方式：全部精确查询" in chinese.content.decode()
    assert "on its schedule" in english.content.decode()
