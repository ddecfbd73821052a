"""Cross-validate candidate methods on the train split (never the held-out one):
`python benchmarks/detection_compare.py`.

Each candidate replaces the shipped model inside the same classifiers and rules, so the numbers are those
of the whole decision. Needs the 'train' extra; the wordllama candidate runs only where wordllama is installed.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

from detection_train import C, by_task, classifier, fit

from gateway.detection import classifiers
from gateway.detection.corpus import TASKS, TRAIN_FILE, Example, read
from gateway.detection.evaluate import ALL, score
from gateway.detection.features import features, tokens
from gateway.detection.model import from_json

_FOLDS = 5
_ALL_TASKS = frozenset(TASKS)
_NOT_OFFER = _ALL_TASKS - {"offer"}


class _Fitted:
    """Stands in for gateway.detection.model.Models during cross-validation."""

    thresholds: dict[str, float] = {}

    def __init__(self, vectorizer: Any, models: dict[str, Any]) -> None:
        self.vectorizer, self.models = vectorizer, models

    def knows_a_word(self, text: str) -> bool:
        """Approximates the shipped model's check: the text has a feature the vectoriser knows."""
        return bool(getattr(self.vectorizer.transform([text]), "nnz", 1))

    def probabilities(self, task: str, text: str) -> dict[str, float]:
        model = self.models[task]
        row = model.predict_proba(self.vectorizer.transform([text]))[0]
        return dict(zip(model.classes_, row, strict=True))


class _Constant:
    thresholds: dict[str, float] = {}

    def knows_a_word(self, text: str) -> bool:
        return True

    def probabilities(self, task: str, text: str) -> dict[str, float]:
        return dict.fromkeys(TASKS[task], 0.0) | {TASKS[task][-1]: 1.0}


def _fit(vectorizer: Any, examples: Sequence[Example], c: float) -> _Fitted:
    """Another vectoriser under the same classifiers, without implied labels."""
    vectorizer.fit([example.text for example in examples])
    rows = list(examples)
    models = {}
    for task, task_rows in by_task(rows).items():
        matrix = vectorizer.transform([row.text for row in task_rows])
        models[task] = classifier(c).fit(matrix, [row.label for row in task_rows])
    return _Fitted(vectorizer, models)


def _tfidf(analyzer: Callable[[str], list[str]]) -> Callable[[], Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return lambda: TfidfVectorizer(analyzer=analyzer, sublinear_tf=True)


def _wordllama() -> Callable[[], Any] | None:
    try:
        from wordllama import WordLlama
    except ImportError:
        return None
    from sklearn.preprocessing import FunctionTransformer

    embedder = WordLlama.load(disable_download=True)
    return lambda: FunctionTransformer(lambda texts: embedder.embed(list(texts), norm=True))


def _shipped(c: float, implied_for: frozenset[str]) -> Callable[[Sequence[Example]], Any]:
    """The shipped method: fitted, exported and scored exactly as at run time."""
    return lambda examples: from_json(fit(examples, c, implied_for))


def candidates() -> dict[str, Callable[[Sequence[Example]], Any]]:
    words = _tfidf(lambda text: [f"w {word}" for word in tokens(text)])
    chars = _tfidf(lambda text: [f for f in features(text) if f.startswith("c ")])
    found: dict[str, Callable[[Sequence[Example]], Any]] = {
        "the guard rules alone (models always say no)": lambda examples: _Constant(),
        "word unigrams, LR": lambda examples: _fit(words(), examples, C),
        "char 2-5-grams, LR": lambda examples: _fit(chars(), examples, C),
        "char + word n-grams, LR C=10": _shipped(10.0, frozenset()),
        "char + word n-grams + implied labels, LR C=3": _shipped(3.0, _ALL_TASKS),
        "char + word n-grams + implied labels, LR C=10": _shipped(10.0, _ALL_TASKS),
        "char + word n-grams + implied labels, LR C=30": _shipped(30.0, _ALL_TASKS),
        "char + word n-grams + implied labels except offer, LR C=10": _shipped(10.0, _NOT_OFFER),
        "char + word n-grams + implied labels except offer, LR C=30": _shipped(30.0, _NOT_OFFER),
    }
    embed = _wordllama()
    if embed is not None:
        found["wordllama 256-d embeddings, LR"] = lambda examples: _fit(embed(), examples, C)
    return found


def cross_validate(method: Callable[[Sequence[Example]], Any], examples: Sequence[Example]) -> dict[str, float]:
    """Accuracy per task, each text scored by a model fitted on the folds that do not contain it."""
    texts = sorted({example.text for example in examples})
    random.Random(0).shuffle(texts)
    fold = {text: i % _FOLDS for i, text in enumerate(texts)}
    correct = dict.fromkeys(TASKS, 0)
    for k in range(_FOLDS):
        fitted = method([example for example in examples if fold[example.text] != k])
        with mock.patch.object(classifiers, "load", lambda fitted=fitted: fitted):
            scores = score(example for example in examples if fold[example.text] == k)
        for task in TASKS:
            correct[task] += scores[(task, ALL)].correct if (task, ALL) in scores else 0
    totals = {task: sum(1 for example in examples if example.task == task) for task in TASKS}
    return {task: correct[task] / totals[task] for task in TASKS}


def main(argv: list[str] | None = None) -> int:
    examples = [example for example in read(TRAIN_FILE) if example.split != "test"]
    print(f"| method ({_FOLDS}-fold CV on the train split) | " + " | ".join(TASKS) + " |")
    print("| --- |" + " ---: |" * len(TASKS))
    for name, method in candidates().items():
        accuracy = cross_validate(method, examples)
        print(f"| {name} | " + " | ".join(f"{accuracy[task]:.3f}" for task in TASKS) + " |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
