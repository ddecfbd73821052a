"""`baton eval [FILE]`: how well the classifiers do on a labelled JSONL file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.detection.classifiers import is_done, is_frustrated, offer_reply, wants_human
from gateway.detection.corpus import HELD_OUT_FILE, TASKS, CorpusError, Example, read

ALL = "all"


@dataclass(frozen=True)
class Phrases:
    """A workspace's own words, as handover.phrases and ai_agent.closing_phrases would give them."""

    handover: Sequence[str] = ()
    closing: Sequence[str] = ()


def predict(example: Example, phrases: Phrases = Phrases()) -> str:
    """The label the classifiers give the example's text for its task."""
    text = example.text
    if example.task == "human":
        return "asks" if wants_human(text, phrases.handover) else "not asks"
    if example.task == "closing":
        return "done" if is_done(text, phrases.closing) else "continues"
    if example.task == "offer":
        return offer_reply(text)
    return "frustrated" if is_frustrated(text) else "not"


def _agrees(example: Example, predicted: str) -> bool:
    # The product only decides 'asks' or not: a look-alike and a plain message are both right as 'not asks'.
    return predicted == example.label or (predicted == "not asks" and example.label != "asks")


@dataclass
class Score:
    """Counts for one decision in one language; 'positive' is the label the decision looks for."""

    total: int = 0
    correct: int = 0
    true_positive: int = 0
    predicted_positive: int = 0
    actual_positive: int = 0
    lookalikes: int = 0
    lookalikes_handed_over: int = 0
    confusions: list[tuple[Example, str]] = field(default_factory=list)

    def add(self, example: Example, predicted: str) -> None:
        positive = TASKS[example.task][0]
        self.total += 1
        self.correct += _agrees(example, predicted)
        self.true_positive += predicted == positive == example.label
        self.predicted_positive += predicted == positive
        self.actual_positive += example.label == positive
        self.lookalikes += example.label == "lookalike"
        self.lookalikes_handed_over += example.label == "lookalike" and predicted == positive
        if not _agrees(example, predicted):
            self.confusions.append((example, predicted))

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    @property
    def precision(self) -> float | None:
        return self.true_positive / self.predicted_positive if self.predicted_positive else None

    @property
    def recall(self) -> float | None:
        return self.true_positive / self.actual_positive if self.actual_positive else None

    @property
    def lookalike_rate(self) -> float | None:
        return self.lookalikes_handed_over / self.lookalikes if self.lookalikes else None


def score(examples: Iterable[Example], phrases: Phrases = Phrases()) -> dict[tuple[str, str], Score]:
    """Scores by (task, language), with language 'all' for each task as a whole."""
    scores: dict[tuple[str, str], Score] = {}
    for example in examples:
        predicted = predict(example, phrases)
        for lang in (ALL, example.lang):
            scores.setdefault((example.task, lang), Score()).add(example, predicted)
    return scores


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(scores: dict[tuple[str, str], Score]) -> list[str]:
    """Rows of a Markdown table: precision and recall of the label each decision looks for, and accuracy."""
    lines = [
        "| decision | lang | n | looks for | precision | recall | accuracy | look-alikes handed over |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    langs = sorted({lang for _, lang in scores} - {ALL})
    for task, labels in TASKS.items():
        for lang in (ALL, *langs):
            found = scores.get((task, lang))
            if found is None:
                continue
            handed = "-" if not found.lookalikes else f"{found.lookalikes_handed_over}/{found.lookalikes}"
            lines.append(
                f"| {task} | {lang} | {found.total} | {labels[0]} | {_cell(found.precision)} | {_cell(found.recall)}"
                f" | {_cell(found.accuracy)} | {handed} |"
            )
    return lines


def confusions(scores: dict[tuple[str, str], Score]) -> list[str]:
    """One line per misclassified example: decision, language, expected -> predicted, text."""
    lines = []
    for task in TASKS:
        for example, predicted in scores.get((task, ALL), Score()).confusions:
            lines.append(f"{task}\t{example.lang}\t{example.label} -> {predicted}\t{example.text}")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baton eval", description=main.__doc__)
    parser.add_argument("file", nargs="?", type=Path, default=HELD_OUT_FILE,
                        help="labelled JSONL (default: the shipped held-out split)")
    parser.add_argument("--handover-phrase", action="append", default=[], metavar="PHRASE",
                        help="a workspace's own words for asking for a person (repeatable)")
    parser.add_argument("--closing-phrase", action="append", default=[], metavar="PHRASE",
                        help="a workspace's own closing words (repeatable)")
    parser.add_argument("--no-confusions", action="store_true", help="print the table only")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the detection classifiers over a labelled JSONL file (the shipped held-out split by default) and
    print precision, recall and accuracy per decision and language, then every misclassified message.

    Each line of FILE is {"text": ..., "task": "human"|"closing"|"offer"|"frustration", "label": ...,
    "lang": ...}; see tests/data/detection/README.md. Try a workspace's own words with --handover-phrase
    and --closing-phrase before adding them to config.yaml.
    """
    args = _parser().parse_args(argv)
    try:
        examples = list(read(args.file))
    except (OSError, CorpusError) as exc:
        print(f"baton eval: {exc}", file=sys.stderr)
        return 2
    scores = score(examples, Phrases(args.handover_phrase, args.closing_phrase))
    print(f"{args.file}: {len(examples)} examples\n")
    print("\n".join(table(scores)))
    if not args.no_confusions:
        lines = confusions(scores)
        print(f"\nMisclassified ({len(lines)}): decision, lang, expected -> predicted, text")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
