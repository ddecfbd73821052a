"""The knowledge base: loading it, rendering it into the system prompt, and reading it back out.

The rendered block is the contract between Baton and every model, including the offline
`baton/knowledge` model, which reads the knowledge back with `parse_knowledge`:

    ## Knowledge
    ### Q: What are your opening hours?
    A: Mon–Fri 9–17.
       Closed on public holidays.

Continuation lines are indented by three spaces, so an answer may hold any text (even lines that
look like headings) and `parse_knowledge(render_knowledge(entries)) == entries` always holds.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

UNKNOWN_MARKER = "[[unknown]]"
KNOWLEDGE_HEADING = "## Knowledge"
HANDOVER_TOOL = "handover_to_human"

_QUESTION = "### Q: "
_ANSWER = "A: "
_INDENT = "   "
_EMPTY = "(No knowledge entries.)"
_MARKDOWN_HEADING = re.compile(r"^ {0,3}#{1,3}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_UNKNOWN = re.compile(r"[ \t]*\[\[\s*unknown\s*\]\]", re.IGNORECASE)


@dataclass(frozen=True)
class KnowledgeEntry:
    question: str
    answer: str
    #: Where the entry came from, for operators; not part of the prompt, so not part of equality.
    source: str = field(default="inline", compare=False)


def load_knowledge(entries: list[dict[str, Any]], files: list[str], base_dir: Path) -> list[KnowledgeEntry]:
    """Inline `{"q", "a"}` entries first, then one entry per heading of each Markdown file."""
    loaded = [_inline_entry(index, entry) for index, entry in enumerate(entries)]
    for pattern in files:
        for path in _expand(pattern, base_dir):
            loaded.extend(split_markdown(_read(path, pattern), source=_source_name(path, base_dir)))
    return loaded


def split_markdown(text: str, source: str = "inline") -> list[KnowledgeEntry]:
    """One entry per `#`/`##`/`###` heading; the body up to the next such heading is the answer."""
    entries: list[KnowledgeEntry] = []
    for title, body in _sections(text.splitlines()):
        answer = reflow(body).strip()
        if title and answer:
            entries.append(KnowledgeEntry(title, answer, source))
    return entries


_BLOCK_START = re.compile(r"^\s*(?:[-*+•]\s|\d+[.)]\s|>|\||```|~~~|#)")


def reflow(lines: list[str]) -> str:
    """Markdown's soft line wraps joined into one line per paragraph (chat apps show every newline): blank
    lines, list items, quotes, tables, code blocks and hard breaks (two trailing spaces or a backslash) stay."""
    out: list[str] = []
    joinable = False  # the previous line may take the next one as its continuation
    fenced = False
    for raw in lines:
        line = raw.rstrip()
        if _FENCE.match(raw):
            fenced = not fenced
            out.append(line)
            joinable = False
            continue
        if fenced or not line:
            out.append(raw if fenced else "")
            joinable = False
            continue
        hard_break = raw.endswith("  ") or line.endswith("\\")
        continuation = joinable and not _BLOCK_START.match(raw) and not raw.startswith("    ")
        if continuation:
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line.removesuffix("\\") if hard_break else line)
        if continuation and hard_break:
            out[-1] = out[-1].removesuffix("\\")
        joinable = not hard_break
    return "\n".join(out)


def render_knowledge(entries: Iterable[KnowledgeEntry]) -> str:
    """The knowledge block Baton puts into the system prompt, whatever the model."""
    blocks = [_render_entry(entry) for entry in entries]
    return "\n".join([KNOWLEDGE_HEADING, "\n\n".join(blocks) if blocks else _EMPTY])


def parse_knowledge(system_prompt: str) -> list[KnowledgeEntry]:
    """The entries of the first knowledge block in a system prompt (the inverse of render_knowledge)."""
    lines = system_prompt.split("\n")
    try:
        start = lines.index(KNOWLEDGE_HEADING) + 1
    except ValueError:
        return []
    entries: list[KnowledgeEntry] = []
    position = start
    while position < len(lines):
        if lines[position] == "":
            position += 1
        elif lines[position].startswith(_QUESTION):
            entry, position = _parse_entry(lines, position)
            entries.append(entry)
        else:
            break  # the first line outside the grammar ends the block
    return entries


def strip_unknown(text: str) -> tuple[str, bool]:
    """Remove UNKNOWN_MARKER (any case, any spacing) and say whether it was there."""
    cleaned, count = _UNKNOWN.subn("", text)
    if not count:
        return text, False
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), True


RANKED_NOTE = "The knowledge above holds the passages found for the customer's latest message, most relevant first."


def instructions(ranked: bool = False) -> str:
    """The standard paragraph appended to every system prompt; `ranked`: the knowledge is the passages retrieval
    found for the customer's latest message, best first (RANKED_NOTE says so, for the offline model too)."""
    return (
        (f"{RANKED_NOTE} " if ranked else "") +
        "Answer the customer only from the knowledge above; do not guess or invent facts, prices, "
        "dates or policies. Keep answers short and friendly, in the customer's language. When the "
        "knowledge does not answer the question, say briefly that you don't know and include the "
        f"marker {UNKNOWN_MARKER} in your reply. If the customer asks to talk to a person or a human "
        f"agent, call the `{HANDOVER_TOOL}` tool instead of answering."
    )


def _inline_entry(index: int, entry: dict[str, Any]) -> KnowledgeEntry:
    question, answer = entry.get("q"), entry.get("a")
    if not (isinstance(question, str) and isinstance(answer, str) and question.strip() and answer.strip()):
        raise ConfigError(f"ai_agent.knowledge.entries[{index}]: needs non-empty 'q' and 'a' strings")
    return KnowledgeEntry(question.strip(), answer.strip())


def _expand(pattern: str, base_dir: Path) -> list[Path]:
    full = str(Path(base_dir) / pattern)
    if not glob.has_magic(full):
        return [Path(full)]
    matches = sorted(Path(match) for match in glob.glob(full, recursive=True) if Path(match).is_file())
    if not matches:
        raise ConfigError(f"knowledge file pattern {pattern!r} matches no files in {base_dir}")
    return matches


def _read(path: Path, pattern: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"knowledge file {pattern!r} not found ({path})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"knowledge file {pattern!r} cannot be read ({path}): {error}") from None


def _source_name(path: Path, base_dir: Path) -> str:
    """A file's name as operators wrote it: relative to the config directory when it is inside it."""
    try:
        return path.relative_to(base_dir).as_posix()
    except ValueError:
        return path.as_posix()


def _sections(lines: list[str]) -> Iterator[tuple[str, list[str]]]:
    title, body, fenced = "", list[str](), False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _MARKDOWN_HEADING.match(line)
        if heading:
            yield title, body
            title, body = heading.group(1).strip(), []
        else:
            body.append(line)
    yield title, body


def _render_entry(entry: KnowledgeEntry) -> str:
    return "\n".join([*_prefixed(_QUESTION, entry.question), *_prefixed(_ANSWER, entry.answer)])


def _prefixed(prefix: str, text: str) -> list[str]:
    first, *rest = text.split("\n")
    return [prefix + first, *(_INDENT + line for line in rest)]


def _parse_entry(lines: list[str], position: int) -> tuple[KnowledgeEntry, int]:
    question, position = _parse_field(lines, position, _QUESTION)
    if position >= len(lines) or not lines[position].startswith(_ANSWER):
        return KnowledgeEntry(question, ""), position
    answer, position = _parse_field(lines, position, _ANSWER)
    return KnowledgeEntry(question, answer), position


def _parse_field(lines: list[str], position: int, prefix: str) -> tuple[str, int]:
    parts = [lines[position].removeprefix(prefix)]
    position += 1
    while position < len(lines) and lines[position].startswith(_INDENT):
        parts.append(lines[position].removeprefix(_INDENT))
        position += 1
    return "\n".join(parts), position
