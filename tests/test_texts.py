"""What Baton says to the customer (gateway.texts), in the customer's language (gateway.detection.language), and a
workspace's own wording from config.yaml."""

from __future__ import annotations

import string

import pytest

from gateway import texts
from gateway.config import parse_config
from gateway.detection.language import detect
from gateway.errors import ConfigError

CASES = [(key, language) for key in texts.TEXTS for language in texts.LANGUAGES]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize(("key", "language"), CASES, ids=[f"{key}-{language}" for key, language in CASES])
def test_every_text_is_said_in_every_language_with_the_same_placeholders(key: str, language: str) -> None:
    wording = texts.TEXTS[key][language]
    assert wording.strip() and wording == wording.strip()
    assert placeholders(wording) == placeholders(texts.TEXTS[key]["en"])
    if language != "en":
        assert wording != texts.TEXTS[key]["en"]  # translated, not copied
    said = texts.say(key, language, name="Ana", reach="+34 600 000 000", back="@09:00")
    assert "{" not in said and (not placeholders(wording) or "Ana" in said or "+34" in said or "@09:00" in said)


def test_a_workspaces_own_wording_wins_and_a_language_it_does_not_give_keeps_baton_s() -> None:
    own = {"handover_notice": {"es": "Un momento, te paso con Lucía.", "en": "One moment, Lucía will help you."}}
    assert texts.say("handover_notice", "es", own) == "Un momento, te paso con Lucía."
    assert texts.say("handover_notice", "en", own) == "One moment, Lucía will help you."
    assert texts.say("handover_notice", "fr", own) == texts.TEXTS["handover_notice"]["fr"]
    assert texts.say("offer", "es", own) == texts.TEXTS["offer"]["es"]
    assert texts.say("offer", "nl", own) == texts.TEXTS["offer"]["en"]  # a language Baton does not speak


WORKSPACE = "workspaces:\n  - id: shop\n"


@pytest.mark.parametrize(("yaml_tail", "complaint"), [
    ("    texts:\n      handover_notis: {es: Hola}\n",
     "workspaces[0].texts: Value error, texts.handover_notis: no such text"),
    ("    texts:\n      offer: {nl: 'Wilt u een mens?'}\n",
     "workspaces[0].texts: Value error, texts.offer.nl: no such language"),
    ("    texts:\n      confirmation: {es: 'Gracias {nombre}'}\n",
     "texts.confirmation.es: a placeholder Baton does not fill"),
    ("    language: nl\n", "workspaces[0].language: Input should be 'en', 'es', 'fr', 'de', 'pt' or 'it'"),
])
def test_an_unknown_text_language_or_placeholder_is_a_config_error_naming_its_path(yaml_tail: str,
                                                                                   complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(WORKSPACE + yaml_tail, source="baton.yaml", environ={})
    assert "baton.yaml:3:" in str(caught.value) and complaint in str(caught.value)


def test_a_workspace_sets_its_language_and_wording() -> None:
    config = parse_config(WORKSPACE + "    language: es\n    texts:\n      goodbye: {es: '¡Hasta pronto!'}\n",
                          source="baton.yaml", environ={})
    [workspace] = config.workspaces
    assert (workspace.language, workspace.texts) == ("es", {"goodbye": {"es": "¡Hasta pronto!"}})


# --- the customer's language -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("messages", "language"), [
    (["What time do you open?"], "en"),
    (["¿A qué hora abrís?"], "es"),
    (["sí, por favor"], "es"),
    (["Vous livrez en Belgique ?"], "fr"),
    (["Wie lange dauert die Lieferung nach München?"], "de"),
    (["Quanto tempo demora a entrega para o Porto?"], "pt"),
    (["Quanto ci mette la consegna a Milano?"], "it"),
    # One short message does not flip the conversation's language.
    (["Hola, ¿cuánto tarda el envío a Valencia?", "ok"], "es"),
    (["Hola, ¿cuánto tarda el envío a Valencia?", "thanks"], "es"),
    (["Bonjour, vous livrez le samedi ?", "ok merci", "👍"], "fr"),
    # A customer who switches for good is followed.
    (["Hola", "Sorry, can we speak English? I need to know how long delivery takes to Dublin",
      "and whether you ship on Saturdays as well"], "en"),
])
def test_the_customers_language_is_read_from_their_recent_messages(messages: list[str], language: str) -> None:
    assert detect(messages, default="en") == language


@pytest.mark.parametrize("message", ["ok", "👍", "12345", "Maria", ""])
def test_too_little_to_tell_keeps_the_workspaces_language(message: str) -> None:
    assert detect([message], default="de") == "de"
