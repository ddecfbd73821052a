"""The fitted linear models, read from model.json and scored in pure Python."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from gateway.detection.features import tokens, weighted

MODEL_FILE = Path(__file__).with_name("model.json")


@dataclass(frozen=True)
class TaskModel:
    """One decision's logistic regression: a weight row per class (one row, for the second class, if binary)."""

    classes: tuple[str, ...]
    intercept: tuple[float, ...]
    weights: dict[str, list[float]]

    def probabilities(self, vector: dict[str, float]) -> dict[str, float]:
        scores = list(self.intercept)
        for feature, value in vector.items():
            for row, weight in enumerate(self.weights.get(feature, ())):
                scores[row] += weight * value
        if len(self.classes) == 2:  # sklearn's binary model scores the second class only
            second = 1.0 / (1.0 + math.exp(-scores[0]))
            return {self.classes[0]: 1.0 - second, self.classes[1]: second}
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        return {label: value / sum(exps) for label, value in zip(self.classes, exps, strict=True)}


@dataclass(frozen=True, eq=False)
class Models:
    idf: dict[str, float]
    tasks: dict[str, TaskModel]
    thresholds: dict[str, float]

    def probabilities(self, task: str, text: str) -> dict[str, float]:
        """How likely each of the task's labels is for this text."""
        return self.tasks[task].probabilities(self.vector(text))

    def knows_a_word(self, text: str) -> bool:
        """Whether any word of the text was seen in training: without one, a short reply has no evidence."""
        return any(f"w {word}" in self.idf for word in tokens(text))

    @lru_cache(maxsize=64)  # noqa: B019 - one Models per process; the checks of a turn share a message
    def vector(self, text: str) -> dict[str, float]:
        return weighted(text, self.idf)


def from_json(data: dict[str, Any]) -> Models:
    tasks = {
        name: TaskModel(tuple(task["classes"]), tuple(task["intercept"]), task["weights"])
        for name, task in data["tasks"].items()
    }
    return Models(data["idf"], tasks, data.get("thresholds", {}))


@cache
def load(path: Path = MODEL_FILE) -> Models:
    """The shipped models, read once per process (about 0.1 s; a worker can call this before its first job)."""
    with path.open(encoding="utf-8") as file:
        return from_json(json.load(file))
