"""The product rules for detection (issues 8 and 12), custom phrases, and the issue's targets on the held-out split."""

from __future__ import annotations

from functools import cache

import pytest

from gateway.detection import is_done, is_frustrated, offer_reply, wants_human
from gateway.detection.corpus import HELD_OUT_FILE, read
from gateway.detection.evaluate import ALL, Score, score


@pytest.mark.parametrize("text", [
    "yes", "great", "perfect", "a human would be great", "a person would be perfect", "that'd help", "sure",
    "ok please", "sí por favor", "oui", "ja bitte",
])  # fmt: skip
def test_positive_replies_to_the_offer_are_yes(text: str) -> None:
    assert offer_reply(text) == "yes"


@pytest.mark.parametrize("text", ["yes but first, how much is shipping?", "ok, but what are your opening hours?"])
def test_a_reply_that_asks_a_new_question_is_other(text: str) -> None:
    assert offer_reply(text) == "other"


@pytest.mark.parametrize("text", [
    "human", "agent", "talk to a human", "transfer to agent", "speak to someone", "support",
    "I don't want to talk to a bot", "voglio parlare con qualcuno", "quero atendimento humano", "un humain svp",
    "¿hay alguien ahí?",
])  # fmt: skip
def test_an_explicit_request_for_a_person_is_always_honoured(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize("text", [
    "do you have a sleeping bag that is person-sized?", "is this tent for 2 people?",
    "a gift for a person who likes reading", "does the app support multiple users?", "is there support for Linux?",
    "agent orange paint", "human resources address for invoices",
])  # fmt: skip
def test_look_alikes_are_not_requests(text: str) -> None:
    assert not wants_human(text)


@pytest.mark.parametrize("text", [
    "thanks, that solved it", "thank you, that's exactly it!", "gracias", "merci", "danke, das war's",
    "perfect thanks 👍",
])  # fmt: skip
def test_closings_are_done(text: str) -> None:
    assert is_done(text)


@pytest.mark.parametrize("text", [
    "thanks, but it still flickers", "thanks. and what about returns?", "perfect, is there a warranty?",
    "thanks! one more thing…", "thanks, I want to talk to a human", "thanks for nothing, this is useless",
])  # fmt: skip
def test_a_question_a_request_or_annoyance_is_never_done(text: str) -> None:
    assert not is_done(text)


@pytest.mark.parametrize("text", [
    "this is useless", "you're not listening", "already told you that", "esto no sirve para nada",
    "vous ne m'écoutez pas", "du hörst mir nicht zu",
])  # fmt: skip
def test_frustration(text: str) -> None:
    assert is_frustrated(text)


@pytest.mark.parametrize("text", ["77031", "lamp", "Carlos", "zxcv", "pablo.ruiz@hotmail.com", "size 38", "headphones"])
def test_a_bare_order_number_name_or_product_answers_nothing(text: str) -> None:
    assert (wants_human(text), offer_reply(text), is_done(text), is_frustrated(text)) == (False, "other", False, False)


def test_a_workspace_phrase_asks_for_a_person_as_whole_words() -> None:
    phrases = ["Kundenbetreuer", "concierge desk"]
    assert wants_human("Bitte den KUNDENBETREUER!", phrases)
    assert wants_human("put me through to the concierge-desk", phrases)
    assert not wants_human("Kundenbetreuerin", ["Kundenbetreuer"])
    assert not wants_human("where is the concierge", phrases)


def test_a_workspace_closing_phrase_closes_unless_a_question_follows() -> None:
    assert is_done("vale, hasta luego compa", ["hasta luego compa"])
    assert not is_done("hasta luego compa, and the invoice?", ["hasta luego compa"])
    assert not is_done("hasta luegox", ["hasta luego"])


@cache
def _held_out() -> dict[tuple[str, str], Score]:
    return score(read(HELD_OUT_FILE))


# The targets. Measured on the held-out split after the method was fixed; the ones it does not reach
# yet are marked strict xfail with the measured value, so meeting one fails the run until the mark goes.
_NOT_MET = {
    ("recall", "en"): "0.976: 41 of 42 requests",
    ("recall", "de"): "0.933: 28 of 30 requests",
}


def _target(kind: str, lang: str) -> object:
    reason = _NOT_MET.get((kind, lang))
    marks = [pytest.mark.xfail(strict=True, reason=f"measured {reason}")] if reason else []
    return pytest.param(kind, lang, marks=marks, id=f"{kind}-{lang}")


@pytest.mark.parametrize(("kind", "lang"), [
    *(_target("recall", lang) for lang in ("en", "es", "fr", "de", "pt", "it")),
    _target("lookalikes", ALL), _target("closing", ALL), _target("offer", ALL),
])  # fmt: skip
def test_targets_on_the_held_out_split(kind: str, lang: str) -> None:
    scores = _held_out()
    if kind == "recall":
        assert (scores[("human", lang)].recall or 0.0) >= (0.99 if lang == "en" else 0.97)
    elif kind == "lookalikes":
        assert (scores[("human", ALL)].lookalike_rate or 0.0) <= 0.02
    else:
        assert (scores[(kind, ALL)].accuracy or 0.0) >= 0.97
