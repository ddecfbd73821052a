"""Operating plugins: `baton plugins` says what each installed plugin is and provides, and a plugin that fails to
load is named once, with its distribution and exception; Baton refuses a configuration that needs what no loaded
plugin provides and otherwise goes on. The broken plugins are real installed distributions: a dist-info with a
`baton` entry point on the path of a `baton` subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
#: Each `baton` here imports litellm (the bundled model plugin): over a minute on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(600)

BROKEN = {
    # name: (distribution, module source)
    "broken_import": ("baton-broken-import", "import no_such_module_for_baton  # noqa\n"),
    "future_api": ("baton-future-api", "BATON_API_VERSION = '2.0'\n"),
    "raises_on_register": ("baton-raises", '''
from gateway.plugin import hookimpl

BATON_API_VERSION = "1.0"


@hookimpl
def register_connectors(register):
    raise RuntimeError("the token file /etc/baton-raises.key is missing")
'''),
}


def install(site: Path, name: str, distribution: str, source: str, version: str = "0.3.1") -> None:
    """A distribution as pip installs it: its module, and a dist-info with METADATA and a `baton` entry point."""
    module = f"{name}_plugin"
    (site / f"{module}.py").write_text(source)
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[baton]\n{name} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of installed broken plugins, on the path of every `baton` this test starts."""
    directory = tmp_path / "site-packages"
    directory.mkdir()
    for name, (distribution, source) in BROKEN.items():
        install(directory, name, distribution, source)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(directory), str(ROOT)]))
    monkeypatch.delenv("REDIS_URL", raising=False)
    return directory


def baton(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=cwd, text=True, capture_output=True,
                          timeout=300)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def config(tmp_path: Path, channel_type: str) -> Path:
    path = tmp_path / "baton.yaml"
    path.write_text(yaml.safe_dump({"workspaces": [{
        "id": "shop", "channels": [{"name": "chat", "type": channel_type}],
        "ai_agent": {"model": "baton/knowledge", "knowledge": {"entries": [{"q": "Hours?", "a": "9 to 5."}]}}}]}))
    return path


def test_plugins_lists_each_plugin_with_its_distribution_hooks_types_and_api_version(tmp_path: Path) -> None:
    result = baton("plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    found = {plugin["name"]: plugin for plugin in listed["plugins"]}
    assert listed["failures"] == [] and listed["api_version"] == "1.1"
    assert found["twilio_whatsapp"] | {"version": "-"} == {
        "name": "twilio_whatsapp", "module": "connectors.twilio_whatsapp", "distribution": "baton-gateway",
        "version": "-", "api_version": "1.1", "hooks": ["register_connectors"],
        "provides": {"connectors": ["twilio_whatsapp"]}}
    assert found["webhook_notifier"]["provides"] == {"notifiers": ["webhook"]}
    assert found["knowledge_model"]["provides"] == {"llm_providers": ["baton"]}
    assert {"webchat", "twilio_whatsapp", "knowledge_model", "webhook_notifier"} <= set(found)
    text = baton("plugins", cwd=tmp_path)
    assert text.returncode == 0 and "twilio_whatsapp  (connectors.twilio_whatsapp, from baton-gateway " in text.stdout
    assert "  connectors: twilio_whatsapp\n" in text.stdout and "  needs plugin API: 1.1\n" in text.stdout


def test_plugins_names_each_plugin_that_failed_its_distribution_and_exception(site: Path, tmp_path: Path) -> None:
    result = baton("plugins", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout
    assert "FAILED broken_import  (broken_import_plugin, from baton-broken-import 0.3.1)\n" \
           "  ModuleNotFoundError: No module named 'no_such_module_for_baton'" in output
    assert "FAILED future_api  (future_api_plugin, from baton-future-api 0.3.1)\n" \
           "  ImportError: it needs plugin API 2.0; this Baton provides 1.1" in output
    assert "FAILED raises_on_register  (raises_on_register_plugin, from baton-raises 0.3.1)\n" \
           "  RuntimeError: the token file /etc/baton-raises.key is missing" in output
    assert "3 failed" in output.splitlines()[0] and "\ntwilio_whatsapp  (" in output  # the others still load


def test_a_configuration_needing_a_type_no_loaded_plugin_provides_is_refused_naming_the_failures(
        site: Path, tmp_path: Path) -> None:
    result = baton("check", "--config", str(config(tmp_path, "carrier_pigeon")), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    error = result.stderr
    assert "workspaces[0].channels[0].type" in error and "unknown type 'carrier_pigeon'" in error
    assert "plugin 'broken_import' (broken_import_plugin, from baton-broken-import 0.3.1) failed to load: " \
           "ModuleNotFoundError: No module named 'no_such_module_for_baton'" in error
    assert "baton-raises 0.3.1" in error and "Traceback" not in error


def test_serve_warns_once_about_a_failed_plugin_the_configuration_does_not_use_and_goes_on(
        site: Path, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    with open(log, "w") as output_file:
        process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config",
                                    str(config(tmp_path, "webchat")), "--port", str(port)],
                                   cwd=tmp_path, stdout=output_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # imports litellm first: minutes on a loaded 2-core machine
        while not _answers(f"http://127.0.0.1:{port}/healthz"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "baton serve did not come up"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    output = log.read_text()
    assert code == 0, output
    line = "plugin 'broken_import' (broken_import_plugin, from baton-broken-import 0.3.1) failed to load: " \
           "ModuleNotFoundError: No module named 'no_such_module_for_baton'; the configuration uses nothing it " \
           "would provide, so Baton goes on without it"
    assert output.count(line) == 1, output  # once, from serve: not again from each gateway and worker


def test_serve_refuses_to_start_when_the_configuration_uses_what_a_failed_plugin_would_provide(
        site: Path, tmp_path: Path) -> None:
    install(site, "fax", "baton-fax", "import fax_driver_not_installed\n", version="1.2.0")
    port = free_port()
    result = baton("serve", "--config", str(config(tmp_path, "fax")), "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown type 'fax'" in result.stderr
    assert "plugin 'fax' (fax_plugin, from baton-fax 1.2.0) failed to load: ModuleNotFoundError: " \
           "No module named 'fax_driver_not_installed'" in result.stderr


def test_loading_the_plugins_does_not_import_litellm(tmp_path: Path) -> None:
    """A gateway process loads every plugin but never calls a model: the model provider's class, which imports
    litellm (seconds), is built only when a model is wanted or the plugins are listed."""
    probe = "import sys; from gateway.plugin_host import connector_types, plugin_manager; plugin_manager(); " \
            "connector_types(); print(sorted(m for m in sys.modules if m.split('.')[0] == 'litellm'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
