"""docs/plugins.md, the plugin author's guide, documents every public name of gateway.plugin, every hook with its
exact arguments, and every check of the conformance suite: adding one without documenting it fails here."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import gateway.plugin as api
from gateway import hookspecs, testing

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text()
HOOKS = sorted(name for name, value in inspect.getmembers(hookspecs) if hasattr(value, "baton_spec"))
CHECKS = sorted({name for cls in (testing.WebhookConformance, testing.WidgetConformance)
                 for name in dir(cls) if name.startswith("test_")})


@pytest.mark.parametrize("name", sorted(api.__all__))
def test_every_public_name_is_in_the_guides_table(name: str) -> None:
    assert f"| `{name}` |" in GUIDE, f"docs/plugins.md does not document gateway.plugin.{name}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_arguments_return_and_when(hook: str) -> None:
    arguments = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    heading = f"### `{hook}({arguments})`"
    assert heading in GUIDE
    section = GUIDE.split(heading, 1)[1].split("\n#", 1)[0]
    assert all(part in section for part in ("**Arguments:**", "**Returns:**", "**When:**")), section


@pytest.mark.parametrize("check", CHECKS)
def test_every_conformance_check_is_in_the_guide(check: str) -> None:
    assert f"| `{check}` |" in GUIDE


def test_the_readme_points_plugin_authors_to_the_guide() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "docs/plugins.md" in readme.split("## Plugins", 1)[1]
