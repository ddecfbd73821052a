from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.knowledge import (
    UNKNOWN_MARKER,
    KnowledgeEntry,
    instructions,
    load_knowledge,
    parse_knowledge,
    reflow,
    render_knowledge,
    strip_unknown,
)

FAQ = """\
Preamble text before any heading is not an entry.

# Acme support

## What are your opening hours?
Mon–Fri 9–17.

Closed on public holidays.

### How do I reset my password? ###
Use the link on the login page.

#### Still stuck?
```sh
# not a heading inside a code fence
acme reset --user me
```
"""


def test_load_inline_then_markdown_entries_per_heading(tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text(FAQ, encoding="utf-8")

    entries = load_knowledge(
        [{"q": " Do you ship abroad? ", "a": "To the EU and the UK."}], ["faq.md"], tmp_path
    )

    assert [(e.question, e.source) for e in entries] == [
        ("Do you ship abroad?", "inline"),
        ("What are your opening hours?", "faq.md"),
        ("How do I reset my password?", "faq.md"),
    ]
    assert entries[0].answer == "To the EU and the UK."
    assert entries[1].answer == "Mon–Fri 9–17.\n\nClosed on public holidays."
    assert entries[2].answer.startswith("Use the link on the login page.\n\n#### Still stuck?\n```sh\n# not")


def test_load_expands_glob_patterns_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "b.md").write_text("# B?\nbee\n", encoding="utf-8")
    (tmp_path / "kb" / "a.md").write_text("# A?\nay\n", encoding="utf-8")

    entries = load_knowledge([], ["kb/*.md"], tmp_path)

    assert [(e.question, e.answer, e.source) for e in entries] == [
        ("A?", "ay", "kb/a.md"),
        ("B?", "bee", "kb/b.md"),
    ]


@pytest.mark.parametrize("name", ["missing.md", "kb/*.md"])
def test_missing_file_is_a_config_error_naming_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=name.replace("*", r"\*")):
        load_knowledge([], [name], tmp_path)


def test_unreadable_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "latin1.md").write_bytes("# Caf\xe9?\n".encode("latin-1"))
    (tmp_path / "folder.md").mkdir()

    for name in ("latin1.md", "folder.md"):
        with pytest.raises(ConfigError, match=f"{name}.*cannot be read"):
            load_knowledge([], [name], tmp_path)


def test_inline_entry_needs_question_and_answer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"entries\[1\]"):
        load_knowledge([{"q": "Hours?", "a": "9–17"}, {"q": "Price?"}], [], tmp_path)


def test_render_is_a_readable_block() -> None:
    entries = [
        KnowledgeEntry("What are your opening hours?", "Mon–Fri 9–17.\nClosed on holidays."),
        KnowledgeEntry("Do you ship abroad?", "Yes."),
    ]

    assert render_knowledge(entries) == (
        "## Knowledge\n"
        "### Q: What are your opening hours?\n"
        "A: Mon–Fri 9–17.\n"
        "   Closed on holidays.\n"
        "\n"
        "### Q: Do you ship abroad?\n"
        "A: Yes."
    )


def test_parse_inverts_render_inside_a_full_system_prompt(tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text(FAQ, encoding="utf-8")
    tricky = [
        KnowledgeEntry(
            "Multi\nline question?", "First\n\n### Q: not a new entry\nA: nor this\n## Knowledge\n"
        ),
        KnowledgeEntry("Empty answer?", ""),
        KnowledgeEntry("  Padded?  ", "  indented\n    more  "),
    ]
    entries = load_knowledge([{"q": "Hours?", "a": "9–17"}], ["faq.md"], tmp_path) + tricky

    prompt = f"You are Acme's assistant.\n\n{render_knowledge(entries)}\n\n{instructions()}\n"

    assert parse_knowledge(prompt) == entries
    assert parse_knowledge(render_knowledge([])) == []
    assert parse_knowledge("No knowledge here.") == []


def test_source_is_metadata_not_identity() -> None:
    assert KnowledgeEntry("Q?", "A.", source="faq.md") == KnowledgeEntry("Q?", "A.")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (f"Sorry, I don't know that. {UNKNOWN_MARKER}", "Sorry, I don't know that."),
        (f"{UNKNOWN_MARKER} Sorry, no idea.", "Sorry, no idea."),
        ("I can't say [[ UNKNOWN ]] for sure.", "I can't say for sure."),
        (f"Line one.\n{UNKNOWN_MARKER}", "Line one."),
    ],
)
def test_strip_unknown_removes_the_marker(reply: str, expected: str) -> None:
    assert strip_unknown(reply) == (expected, True)


def test_strip_unknown_leaves_answers_alone() -> None:
    assert strip_unknown("  We open at 9. ") == ("  We open at 9. ", False)


def test_instructions_name_the_marker_and_the_handover_tool() -> None:
    text = instructions()

    assert UNKNOWN_MARKER in text
    assert "handover_to_human" in text


@pytest.mark.parametrize(("markdown", "reflowed"), [
    ("Returns are free within 30 days\nof delivery.", "Returns are free within 30 days of delivery."),
    ("One paragraph\nwrapped.\n\nAnother\nwrapped.", "One paragraph wrapped.\n\nAnother wrapped."),
    ("Steps:\n- open the order\n- press Return\n  and print the label\n1. first\n2) second",
     "Steps:\n- open the order\n- press Return and print the label\n1. first\n2) second"),
    ("* star\n+ plus\n\u2022 bullet", "* star\n+ plus\n\u2022 bullet"),
    ("Lumen Lamps  \nMain Street 1\\\nBerlin\nGermany", "Lumen Lamps\nMain Street 1\nBerlin Germany"),
    ("Run\n```\nlamp --reset\n  --all\n```\nthen\nwait.", "Run\n```\nlamp --reset\n  --all\n```\nthen wait."),
    ("Text\n\n    indented code\n    stays", "Text\n\n    indented code\n    stays"),
    ("| size | price |\n|---|---|\n| S | 20 |", "| size | price |\n|---|---|\n| S | 20 |"),
    ("> a quote\n> kept", "> a quote\n> kept"),
], ids=["soft wrap", "paragraphs", "lists", "bullets", "hard breaks", "fenced code", "indented code", "table",
        "quote"])
def test_reflow_joins_soft_wraps_and_keeps_lists_code_and_real_breaks(markdown: str, reflowed: str) -> None:
    assert reflow(markdown.split("\n")) == reflowed
