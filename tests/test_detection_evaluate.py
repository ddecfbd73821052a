"""`baton eval`: gateway.detection.evaluate.main over small labelled files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.detection.evaluate import main


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_it_prints_the_table_and_the_confusions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _write(tmp_path / "ours.jsonl", [
        {"text": "talk to a human", "task": "human", "label": "asks", "lang": "en"},
        {"text": "is this tent for 2 people?", "task": "human", "label": "lookalike", "lang": "en"},
        {"text": "please get me the Kundenbetreuer", "task": "human", "label": "asks", "lang": "de"},
        {"text": "thanks, that solved it", "task": "closing", "label": "done"},
    ])  # fmt: skip
    assert main([str(corpus), "--handover-phrase", "zzzz"]) == 0
    out = capsys.readouterr().out
    assert "| human | all | 3 | asks |" in out and "| closing | ? | 1 | done |" in out
    assert "0/1" in out  # the look-alike was not handed over
    assert "Misclassified" in out


def test_a_workspace_phrase_changes_the_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _write(tmp_path / "ours.jsonl", [{"text": "den Zauberer bitte", "task": "human", "label": "asks"}])
    main([str(corpus), "--no-confusions"])
    assert "| human | all | 1 | asks | - | 0.000 |" in capsys.readouterr().out
    main([str(corpus), "--no-confusions", "--handover-phrase", "Zauberer"])
    assert "| human | all | 1 | asks | 1.000 | 1.000 | 1.000 |" in capsys.readouterr().out


def test_a_bad_line_or_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "task": "human", "label": "asks"}\n{"text": "hi", "task": "mood"}\n')
    assert main([str(bad)]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jsonl")]) == 2


def test_the_default_is_the_held_out_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-confusions"]) == 0
    assert "test.jsonl: 624 examples" in capsys.readouterr().out
