"""The labelled corpus: one JSON object a line with text, lang, task, label and split."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: The training corpus, in the repository next to the tests (not inside the installed package).
CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "detection"
TRAIN_FILE = CORPUS_DIR / "train.jsonl"
#: The held-out split ships with the package, so that `baton eval` runs on it wherever Baton is installed.
HELD_OUT_FILE = Path(__file__).resolve().parent / "test.jsonl"

#: Each decision and the labels it takes; the first label is the one the decision looks for.
TASKS: dict[str, tuple[str, ...]] = {
    "human": ("asks", "lookalike", "neither"),
    "closing": ("done", "continues"),
    "offer": ("yes", "no", "other"),
    "frustration": ("frustrated", "not"),
}


class CorpusError(ValueError):
    """A corpus line that is not a labelled example."""


@dataclass(frozen=True)
class Example:
    text: str
    task: str
    label: str
    lang: str = "?"
    split: str = ""


def _example(line: str, where: str) -> Example:
    try:
        row = json.loads(line)
        example = Example(str(row["text"]), row["task"], row["label"], row.get("lang") or "?", row.get("split") or "")
    except (ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{where}: not a JSON object with text, task and label ({exc})") from exc
    if example.label not in TASKS.get(example.task, ()):
        known = ", ".join(f"{task}: {'/'.join(labels)}" for task, labels in TASKS.items())
        raise CorpusError(f"{where}: unknown task/label {example.task}/{example.label} (known: {known})")
    return example


def read(path: Path) -> Iterator[Example]:
    """The examples in a JSONL file, skipping blank lines; CorpusError names the first bad line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield _example(line, f"{path}:{number}")
