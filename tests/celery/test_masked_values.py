"""What a worker's lines show of a task's arguments and result (commissary.celery):
``masked_repr`` shows integers, booleans and None, every other value as ``<masked>``, and keeps
names; ``TaskValuesMasked`` masks the body Celery writes of a message it cannot run. A real
worker's lines: tests/celery/test_task_lines_worker.py."""

import logging

import pytest
from celery.worker.consumer import consumer as celery_consumer

from commissary.celery import MASKED_REPR_MAX_LENGTH, TaskValuesMasked, masked_repr


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ((), "()"),
        ((5,), "(5,)"),
        ((5, True, None), "(5, True, None)"),
        (("pin-1234",), "(<masked>,)"),
        ({"inmate_id": 5, "pin": "1234"}, "{'inmate_id': 5, 'pin': <masked>}"),
        ({"amount": 1.5, "note": b"x"}, "{'amount': <masked>, 'note': <masked>}"),
        ([[1, 2], ("a", 3)], "[[1, 2], (<masked>, 3)]"),
        (
            {"ids": [1, 2], "nested": {"token": "t"}},
            "{'ids': [1, 2], 'nested': {'token': <masked>}}",
        ),
        # A key that is not a name (an identifier) or an integer may be a value itself.
        ({"a secret": 1, 7: 2}, "{<masked>: 1, 7: 2}"),
        ("plain", "<masked>"),
        (object(), "<masked>"),
    ],
)
def test_only_integers_booleans_and_none_are_shown(value, shown):
    assert masked_repr(value) == shown


def test_deep_nesting_is_masked_below_a_depth():
    value = 1
    for _ in range(20):
        value = [value]
    assert masked_repr(value) == "[" * 8 + "<masked>" + "]" * 8


def test_a_long_text_is_cut_at_celerys_length():
    text = masked_repr(list(range(1000)))
    assert len(text) == MASKED_REPR_MAX_LENGTH
    assert text.endswith("...")


def _record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord(
        "celery.worker.consumer.consumer", logging.ERROR, __file__, 0, msg, args, None
    )


SECRET = "pin-52e8f1a6d3"


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        (celery_consumer.INVALID_TASK_ERROR, (ValueError("bad"), f"[['{SECRET}'], {{}}, {{}}]")),
        (celery_consumer.UNKNOWN_FORMAT, (f"body: {SECRET}",)),
        (
            celery_consumer.MESSAGE_DECODE_ERROR,
            (ValueError("bad"), "application/json", "utf-8", f"{{'argsrepr': '{SECRET}'}}", SECRET),
        ),
        (
            celery_consumer.UNKNOWN_TASK_ERROR,
            (
                KeyError("probe.unknown"),
                f"[['{SECRET}'], {{}}, {{}}]",
                {"id": "a1", "task": "probe.unknown", "argsrepr": f"('{SECRET}',)"},
                {"routing_key": "commissary"},
            ),
        ),
    ],
)
def test_the_lines_about_a_message_the_worker_cannot_run_do_not_show_its_body(msg, args):
    record = _record(msg, *args)

    TaskValuesMasked().filter(record)

    text = record.getMessage()
    assert SECRET not in text
    assert "<masked>" in text


def test_an_unknown_tasks_line_keeps_the_headers_but_the_arguments_text():
    record = _record(
        celery_consumer.UNKNOWN_TASK_ERROR,
        KeyError("probe.unknown"),
        "[[], {}, {}]",
        {"id": "a1", "task": "probe.unknown", "argsrepr": f"('{SECRET}',)", "kwargsrepr": "{}"},
        {},
    )

    TaskValuesMasked().filter(record)

    assert record.args[2] == {
        "id": "a1",
        "task": "probe.unknown",
        "argsrepr": "<masked>",
        "kwargsrepr": "<masked>",
    }
