"""config.yaml: validation errors name the YAML path and line; ${ENV} interpolation; connector settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import interpolate, load_config, parse_config
from gateway.deployment import Deployment
from gateway.errors import ConfigError

VALID = """\
workspaces:
  - id: shop
    channels:
      - name: chat
        type: webchat
"""


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="baton.yaml", environ=environ or {})
    return caught.value.reason


def test_the_sample_config_loads_and_builds_without_any_environment(redis_url: str) -> None:
    config = load_config(Path(__file__).parent.parent / "config.yaml", environ={})
    deployment = Deployment.build(config, redis_url)
    assert set(deployment.channels) == {"webchat", "whatsapp"}
    assert deployment.channels["whatsapp"].disabled  # no Twilio credentials: disabled, with a reason
    assert "TWILIO_AUTH_TOKEN" in deployment.channels["whatsapp"].disabled
    assert len(deployment.knowledge("demo")) >= 5  # inline entries and the Markdown file
    deployment.close()


def test_unknown_keys_are_errors_with_path_and_line() -> None:
    message = error_of(VALID + "    handover:\n      no_human_timout: 10\n")
    assert "baton.yaml:7: workspaces[0].handover.no_human_timout" in message
    assert "Extra inputs are not permitted" in message


def test_wrong_types_name_the_path() -> None:
    message = error_of(VALID + "    handover:\n      no_human_timeout: soon\n")
    assert "workspaces[0].handover.no_human_timeout" in message and "baton.yaml:7" in message


def test_missing_workspaces_is_an_error() -> None:
    assert "workspaces" in error_of("log_level: info\n")


def test_duplicate_channel_names_are_refused() -> None:
    text = VALID + "  - id: other\n    channels:\n      - name: chat\n        type: webchat\n"
    assert "duplicate channel name 'chat'" in error_of(text)


def test_environment_variables_are_interpolated_with_defaults() -> None:
    tree = {"a": "${TOKEN}", "b": ["x-${MISSING:-fallback}"], "c": {"d": "${EMPTY:-dflt}"}}
    assert interpolate(tree, {"TOKEN": "s3cret", "EMPTY": ""}) == {
        "a": "s3cret", "b": ["x-fallback"], "c": {"d": "dflt"}}


def test_a_missing_secret_fails_at_startup_naming_the_variable() -> None:
    assert "TWILIO_AUTH_TOKEN is not set" in error_of(VALID + "    notifiers: []\n"
                                                       "secret: ${TWILIO_AUTH_TOKEN}\n")


def test_not_yaml_is_a_clear_error() -> None:
    assert "not valid YAML" in error_of("workspaces: [\n")


def test_a_yaml_syntax_error_names_the_file_and_line_not_pyyamls_unicode_string(tmp_path: Path) -> None:
    path = tmp_path / "baton.yaml"
    path.write_text(VALID + "    handover:\n      phrases: [agent, human\n    notifiers: []\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = caught.value.reason
    assert message.startswith(f"{path}:8:14: not valid YAML: expected ',' or ']', but got ':'"), message
    assert "(while parsing a flow sequence at line 7, column 16)" in message
    assert "notifiers: []" in message  # the offending line
    assert "<unicode string>" not in message


def test_connector_settings_errors_name_the_yaml_path(redis_url: str) -> None:
    text = VALID + ("      - name: wa\n        type: twilio_whatsapp\n        account_sid: nope\n"
                    "        auth_token: t\n        from: '+14155550199'\n")
    config = parse_config(text, source="baton.yaml", environ={})
    with pytest.raises(ConfigError) as caught:
        Deployment.build(config, redis_url)
    assert "baton.yaml:8: workspaces[0].channels[1].account_sid" in caught.value.reason


def test_unknown_connector_type_lists_the_known_ones(redis_url: str) -> None:
    config = parse_config(VALID.replace("type: webchat", "type: telegram"), source="baton.yaml", environ={})
    with pytest.raises(ConfigError) as caught:
        Deployment.build(config, redis_url)
    assert "unknown type 'telegram'" in caught.value.reason and "twilio_whatsapp" in caught.value.reason


def test_missing_knowledge_file_is_a_startup_error(redis_url: str, tmp_path: Path) -> None:
    text = VALID + "    ai_agent:\n      knowledge:\n        files: [faq.md]\n"
    config = parse_config(text, source="baton.yaml", base_dir=tmp_path, environ={})
    with pytest.raises(ConfigError) as caught:
        Deployment.build(config, redis_url)
    assert "faq.md" in caught.value.reason and "knowledge.files" in caught.value.reason
