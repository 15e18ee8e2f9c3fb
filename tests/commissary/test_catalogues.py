"""Every Chinese catalogue of the project is complete: no entry left untranslated, none fuzzy
(gettext skips a fuzzy entry, so the page would show the English), and it speaks the glossary
(``docs/glossary.md``): no word of its "never" column."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

REPOSITORY = Path(__file__).resolve().parents[2]
CATALOGUES = sorted(
    path
    for path in REPOSITORY.glob("**/locale/zh_Hans/LC_MESSAGES/*.po")
    if ".venv" not in path.parts and "var" not in path.parts
)
GLOSSARY = REPOSITORY / "docs" / "glossary.md"


def _avoided_words() -> dict[str, str]:
    """{word never to use: the glossary's term instead}, from the glossary's table."""
    avoided = {}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] not in ("中文", "---"):
            for word in filter(None, (part.strip() for part in cells[2].split(","))):
                avoided[word] = cells[1]
    return avoided


def test_the_project_has_chinese_catalogues():
    assert len(CATALOGUES) >= 5


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_a_chinese_catalogue_has_no_untranslated_or_fuzzy_entry(catalogue):
    with catalogue.open("rb") as po:
        messages = [message for message in read_po(po) if message.id]
    fuzzy = [message.id for message in messages if message.fuzzy]
    untranslated = [
        message.id
        for message in messages
        if not message.string or (isinstance(message.string, tuple) and not all(message.string))
    ]
    assert (fuzzy, untranslated) == ([], [])


def test_the_glossary_names_words_to_avoid():
    assert {"设施": "监所", "存款人": "汇款人", "存款": "汇款"}.items() <= _avoided_words().items()


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_a_chinese_catalogue_uses_the_glossary_s_terms(catalogue):
    avoided = _avoided_words()
    with catalogue.open("rb") as po:
        translations = [
            (message.id, text)
            for message in read_po(po)
            if message.id
            for text in (message.string if isinstance(message.string, tuple) else [message.string])
        ]
    off_glossary = [
        (message_id, word, avoided[word])
        for message_id, text in translations
        for word in avoided
        if word in text
    ]
    assert off_glossary == []


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_held_money_and_a_frozen_account_read_differently(catalogue):
    """冻结 means a frozen account and nothing else: a message about held money (a hold, its
    release) that does not speak of a frozen account never uses it, and one about a frozen
    account always does, so a clerk cannot mistake one for the other."""
    held = re.compile(r"\bhold(s|ing)?\b|\bheld\b", re.IGNORECASE)
    frozen = re.compile(r"\bfr(eeze|ozen)\b", re.IGNORECASE)
    wrong = []
    with catalogue.open("rb") as po:
        for message in read_po(po):
            english = " ".join(message.id) if isinstance(message.id, tuple) else message.id
            chinese = "".join(
                message.string if isinstance(message.string, tuple) else [message.string]
            )
            if not english or not chinese:
                continue
            is_frozen = bool(frozen.search(english))
            if held.search(english) and not is_frozen and "冻结" in chinese:
                wrong.append((english, chinese))
            if is_frozen and "unfrozen" not in english.lower() and "冻结" not in chinese:
                wrong.append((english, chinese))
    assert wrong == []
