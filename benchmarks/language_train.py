"""Fit the language identifier's character trigram profiles on the detection corpus's train split.

Run `python benchmarks/language_train.py`; it rewrites gateway/detection/language.json (the same corpus gives the
same file). `python benchmarks/language_train.py --check FILE...` prints the accuracy on labelled JSONL files.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

from gateway.detection.corpus import TRAIN_FILE, read
from gateway.detection.language import LANGUAGE_FILE, trigrams

#: Trigrams kept per language (the most frequent): enough for short chat messages, a small file.
KEEP = 3000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/language_train.py", description=__doc__)
    parser.add_argument("--check", nargs="*", type=Path, default=[])
    args = parser.parse_args(argv)
    if args.check:
        from gateway.detection.language import detect

        for path in args.check:
            rows = list(read(path))
            right = sum(detect([row.text], default="xx") == row.lang for row in rows)
            print(f"{path}: {right}/{len(rows)} ({right / len(rows):.3f}) identified; undecided or wrong: "
                  f"{[row.text for row in rows if detect([row.text], default='xx') != row.lang][:20]}")
        return 0
    counts: dict[str, Counter[str]] = {}
    seen: set[str] = set()
    for example in read(TRAIN_FILE):
        if example.text in seen or example.lang == "?":
            continue
        seen.add(example.text)
        counts.setdefault(example.lang, Counter()).update(trigrams(example.text))
    profiles = {}
    for language, counter in sorted(counts.items()):
        total = sum(counter.values()) + KEEP
        kept = dict(sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:KEEP])
        profiles[language] = {"unseen": round(math.log(1 / total), 4),
                              "trigrams": {gram: round(math.log((n + 1) / total), 4) for gram, n in kept.items()}}
    LANGUAGE_FILE.write_text(json.dumps(profiles, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n",
                             encoding="utf-8")
    print(f"{LANGUAGE_FILE}: {', '.join(f'{lang} {len(c)}' for lang, c in sorted(counts.items()))} trigrams seen")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
