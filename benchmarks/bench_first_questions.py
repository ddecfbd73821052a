"""False positives of the frustration decision on neutral first questions (issue 17).

Run: LITELLM_LOCAL_MODEL_COST_MAP=True python benchmarks/bench_first_questions.py [FILE]

FILE (tests/data/neutral_first_questions.jsonl by default: 216 plain questions, 36 in each of the six languages,
written by hand and in neither split of the detection corpus) is read as a customer's first message. For each
language the table gives how many the frustration model calls frustrated, how many the AI's decision for a fresh
chat offers a person ("I'm sorry this isn't helping…"), how many it hands over as a request for a person (the
other decision, `wants_human`), and how many would be offered a person if asked after the AI had answered once.
Exit status 1 when any first question is offered a person.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from gateway import detection
from gateway.detection.corpus import read
from gateway.work.turn import Action, Situation, choose

NEUTRAL_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "neutral_first_questions.jsonl"
FRESH = Situation("ai")
ANSWERED = Situation("ai", ai_has_answered=True)


def measure(path: Path) -> tuple[dict[str, list[int]], list[str]]:
    """Per language: [questions, frustrated, offered first, handed over first, offered after an answer]; the misses."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    misses = []
    for example in read(path):
        row = counts[example.lang]
        first, later = choose(FRESH, [example.text]), choose(ANSWERED, [example.text])
        flags = (detection.is_frustrated(example.text), first is Action.OFFER_PERSON, first is Action.HAND_OVER,
                 later is Action.OFFER_PERSON)
        for i, flag in enumerate(flags, 1):
            row[i] += flag
        row[0] += 1
        if any(flags):
            misses.append(f"{example.lang}\tfirst: {first.name}\tafter an answer: {later.name}\t{example.text}")
    return counts, misses


def _rate(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_first_questions.py", description=__doc__)
    parser.add_argument("file", nargs="?", type=Path, default=NEUTRAL_FILE)
    args = parser.parse_args(argv)
    counts, misses = measure(args.file)
    total = [sum(column) for column in zip(*counts.values(), strict=True)]
    print("| lang | questions | frustration model: frustrated | first question: offered a person "
          "| first question: handed over | after an answer: offered a person |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for lang, row in [*sorted(counts.items()), ("all", total)]:
        print(f"| {lang} | {row[0]} | " + " | ".join(_rate(n, row[0]) for n in row[1:]) + " |")
    for miss in misses:
        print(miss)
    return 1 if total[2] else 0


if __name__ == "__main__":
    sys.exit(main())
