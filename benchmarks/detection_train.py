"""Fit the detection models on the corpus's train split and write model.json (needs the 'train' extra).

Run `python benchmarks/detection_train.py`; the same corpus gives the same file byte for byte. The held-out
split is never read here: `baton eval` measures on it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.detection.corpus import TASKS, TRAIN_FILE, Example, read
from gateway.detection.features import features, normalise
from gateway.detection.model import MODEL_FILE

#: Inverse regularisation strength, chosen by cross-validation on the train split (see docs/detection.md).
C = 30.0
#: Probability from which a decision's model says yes; cross-validated on the train split (docs/detection.md).
THRESHOLDS = {"human": 0.5, "closing": 0.5, "frustration": 0.4}
#: Weights smaller than this change no decision; dropping them keeps model.json small.
_MIN_WEIGHT = 1e-3
_DIGITS = 4


def vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # The runtime (gateway.detection.features.weighted) reproduces exactly this weighting.
    return TfidfVectorizer(analyzer=features, sublinear_tf=True, norm="l2", smooth_idf=True)


def classifier(c: float = C) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced")


#: What a label for one decision says about the others: a product question neither closes the chat nor
#: accepts the offer, a closing is not frustrated, an annoyed customer is not done.
_IMPLIED: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("human", "lookalike"): (("closing", "continues"), ("offer", "other"), ("frustration", "not")),
    ("human", "neither"): (("closing", "continues"), ("offer", "other"), ("frustration", "not")),
    ("human", "asks"): (("closing", "continues"),),
    ("closing", "done"): (("human", "neither"), ("frustration", "not")),
    ("frustration", "frustrated"): (("closing", "continues"),),
}
#: The decisions trained on implied labels too. Cross-validation on the train split: they help the closing
#: and frustration decisions and hurt the offer replies (docs/detection.md).
IMPLIED_FOR = frozenset(TASKS) - {"offer"}
#: Very short messages ('ok', 'thanks') close a chat or accept the offer depending on context: no implied
#: closing or offer labels from them.
_MIN_IMPLYING_WORDS = 3
_CONTEXTUAL = frozenset({"closing", "offer"})


def implied(examples: Sequence[Example]) -> list[Example]:
    """Extra examples for other decisions that each example's label implies, unless labelled there already."""
    labelled = {(example.task, normalise(example.text)) for example in examples}
    extra: dict[tuple[str, str], Example] = {}
    for example in examples:
        short = len(normalise(example.text).split()) < _MIN_IMPLYING_WORDS
        for task, label in _IMPLIED.get((example.task, example.label), ()):
            key = (task, normalise(example.text))
            if key not in labelled and not (short and task in _CONTEXTUAL):
                extra.setdefault(key, Example(example.text, task, label, example.lang, example.split))
    return list(extra.values())


def by_task(examples: Sequence[Example]) -> dict[str, list[Example]]:
    return {task: [example for example in examples if example.task == task] for task in TASKS}


def _task_model(fitted: Any, names: Sequence[str]) -> dict[str, Any]:
    rows = fitted.coef_.T.round(_DIGITS)
    weights = {name: row.tolist() for name, row in zip(names, rows, strict=True) if abs(row).max() >= _MIN_WEIGHT}
    return {
        "classes": [str(label) for label in fitted.classes_],
        "intercept": fitted.intercept_.round(_DIGITS).tolist(),
        "weights": weights,
    }


def fit(examples: Sequence[Example], c: float = C, implied_for: frozenset[str] = IMPLIED_FOR) -> dict[str, Any]:
    """The model.json document for these training examples."""
    vectors = vectorizer().fit([example.text for example in examples])
    names = vectors.get_feature_names_out()
    tasks = {}
    extra = [row for row in implied(examples) if row.task in implied_for]
    for task, rows in by_task([*examples, *extra]).items():
        matrix = vectors.transform([row.text for row in rows])
        tasks[task] = _task_model(classifier(c).fit(matrix, [row.label for row in rows]), names)
    idf = {name: round(float(value), _DIGITS) for name, value in zip(names, vectors.idf_, strict=True)}
    return {"version": 1, "trained_on": len(examples), "C": c, "idf": idf, "tasks": tasks, "thresholds": THRESHOLDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/detection_train.py", description=__doc__)
    parser.add_argument(
        "--corpus", type=Path, default=TRAIN_FILE, help="labelled JSONL (rows of split 'test' are skipped)"
    )
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    args = parser.parse_args(argv)
    examples = [example for example in read(args.corpus) if example.split != "test"]
    document = fit(examples)
    args.out.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(examples)} examples, {len(document['idf'])} features")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
