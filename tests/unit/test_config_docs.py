"""docs/configuration.md documents exactly the keys the settings schema has."""

from __future__ import annotations

import re

from callcenter.config import REPO_ROOT, setting_keys

DOC = REPO_ROOT / "docs" / "configuration.md"
# "### `[service]`", "### `[[queues]]` (one table per queue; ...)", "### Top level"
HEADING = re.compile(r"^###\s+(?:`\[(?P<section>\w+)\]`|`\[\[(?P<tables>\w+)\]\]`|Top level)")
KEY_ROW = re.compile(r"^\|\s*(?P<keys>`\w+`(?:\s*,\s*`\w+`)*)\s*\|")


def documented_keys(text: str) -> list[str]:
    """The keys in the first column of each settings table, as ``setting_keys()`` names them."""
    keys: list[str] = []
    prefix: str | None = None
    for line in text.splitlines():
        heading = HEADING.match(line)
        if heading:
            prefix = (f"{heading['section']}." if heading["section"]
                      else f"{heading['tables']}[]." if heading["tables"] else "")
            continue
        if line.startswith("#"):
            prefix = None  # any other heading ends the settings tables' part
            continue
        row = KEY_ROW.match(line)
        if prefix is not None and row:
            keys += [prefix + key for key in re.findall(r"`(\w+)`", row["keys"])]
    return keys


def test_every_setting_is_documented_and_every_documented_key_exists() -> None:
    documented = documented_keys(DOC.read_text(encoding="utf-8"))
    schema = setting_keys()
    assert sorted(set(schema) - set(documented)) == [], "keys missing from the docs"
    assert sorted(set(documented) - set(schema)) == [], "documented keys the schema lacks"
    assert len(documented) == len(set(documented)), "a key is documented twice"


def test_the_check_reads_the_tables_it_should() -> None:
    text = ("### `[asterisk]`\n| key | default | meaning |\n|---|---|---|\n"
            "| `rtp_start`, `rtp_end` | `1`, `2` | ports |\n"
            "### `[[agents]]` (one per agent)\n| `id` | required | x |\n"
            "### Top level\n| `data_dir` | x | y |\n"
            "## Using an external Asterisk\n| `not_a_key` | x | y |\n")
    assert documented_keys(text) == ["asterisk.rtp_start", "asterisk.rtp_end", "agents[].id",
                                     "data_dir"]
