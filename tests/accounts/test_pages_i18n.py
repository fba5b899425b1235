"""The account pages' German catalogues: the compiled .mo files are committed (a fresh machine
with only Python has no msgfmt to build them), so this fails when a .mo no longer says what its
.po says, or a message has no German text. After editing a .po:
`msgfmt --check -o django.mo django.po` (or `manage.py compilemessages`) and commit both."""

from __future__ import annotations

import ast
import gettext
from pathlib import Path

import pytest

PLATFORM = Path(__file__).resolve().parents[2] / "platform"
CATALOGUES = [
    PLATFORM / "accounts" / "locale" / "de" / "LC_MESSAGES",
    PLATFORM / "onboarding" / "locale" / "de" / "LC_MESSAGES",
]


def po_messages(path: Path) -> dict[str, str]:
    """msgid → msgstr of a .po file without plurals or contexts (what these catalogues hold)."""
    messages: dict[str, str] = {}
    current: dict[str, list[str]] = {}
    key = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("msgid "):
            if "msgstr" in current:
                messages["".join(current["msgid"])] = "".join(current["msgstr"])
            current, key = {"msgid": [ast.literal_eval(line[6:])]}, "msgid"
        elif line.startswith("msgstr "):
            current["msgstr"], key = [ast.literal_eval(line[7:])], "msgstr"
        elif line.startswith('"') and key:
            current[key].append(ast.literal_eval(line))
    if "msgstr" in current:
        messages["".join(current["msgid"])] = "".join(current["msgstr"])
    messages.pop("", None)  # the header
    return messages


@pytest.mark.parametrize("folder", CATALOGUES, ids=lambda folder: folder.parents[2].name)
def test_the_committed_mo_matches_its_po_and_every_message_is_translated(folder: Path) -> None:
    expected = po_messages(folder / "django.po")
    assert expected, "no messages read"
    assert [msgid for msgid, msgstr in expected.items() if not msgstr] == []
    with (folder / "django.mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    assert {msgid: catalogue.gettext(msgid) for msgid in expected} == expected
