"""Fixtures of the fault suite: a Lab of real processes per test (their logs' tails printed when it fails), and
the figures each scenario reports, printed as one table at the end of the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.audit import FIGURES, NOTES, record, table
from tests.faults.lab import Lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is marked `faults` and `slow`: the default run leaves out the suite's five minutes, `pytest -m
    faults` runs it alone."""
    here = Path(__file__).parent
    for item in items:
        if item.path.parent == here:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    laboratory = Lab(tmp_path / "lab")
    try:
        yield laboratory
    finally:
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            print(f"\n--- the lab's logs ({laboratory.dir}) ---\n{laboratory.tails()}")
        laboratory.close()


@pytest.fixture
def figures() -> Callable[..., None]:
    """Report a scenario's audit: figures(name, report, recovery="…", held="…")."""
    return record


@pytest.fixture
def note() -> Callable[[str], None]:
    """Report another figure, printed with the table at the end of the run."""
    return NOTES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("fault scenarios")
        terminalreporter.write_line(table(FIGURES))
    for text in NOTES:
        terminalreporter.write_line(text)
