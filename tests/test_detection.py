"""Table-driven tests for the customer-message classifiers in gateway.detection."""

from __future__ import annotations

import pytest

from gateway.detection import is_done, is_frustrated, is_rephrase, normalise, offer_reply, wants_human

ASKS_FOR_HUMAN = [
    # The phrases the product description promises.
    "transfer to agent",
    "speak to someone",
    "support",
    # Just the person, or just "support".
    "support please",
    "SUPPORT!!!",
    "Support?",
    "human",
    "Human!! 😡",
    "human pls",
    "real person",
    "a person please",
    "operator",
    "representative",
    "AGENT",
    "agent please",
    "live agent",
    "customer service",
    "Tech support",
    "help desk",
    "staff please",
    # A request verb near a person.
    "I need support",
    "contact support",
    "contact support for a refund",
    "I need support with my order",
    "talk to a human",
    "can I speak with a real person please?",
    "get me an agent",
    "connect me to someone",
    "I want to talk to a manager",
    "I'd like to speak to a representative",
    "can I talk to someone",
    "is there a human I can talk to?",
    "is there anyone I can speak to",
    "put me through to a person",
    "let me speak to your manager",
    "I need to talk to someone about my order",
    "no, I want a human",
    "can i get a live agent",
    "I want a real person not a bot",
    "connect me to customer service please",
    "transfer me to a human please 🙏",
    "can someone help me",
    "speak to a human being",
    "chat with a live agent",
    "could I be transferred to an agent?",
    "I want to be connected to a human",
    "escalate to a supervisor",
    "i need a human asap",
    "Can I talk to customer support?",
    "Get me someone who knows what they are doing",
    "connect me w a human",
    "Can support help me?",
    "hi, could you please connect me with a human? thanks",
    "Hello! Could you transfer me to one of your agents, please?",
    # Typos.
    "tranfer to agent",
    "speek to someone",
    "represenative",
    "humam",
    "operater",
    "agnet please",
    "costumer service",
    "suport",
    "talk to humen",
    "I want to speak to a reprasentative",
    # Accents and other languages.
    "hablar con un agente",
    "Quiero hablar con una persona",
    "mit einem Menschen sprechen",
    "Ich möchte mit einem Mitarbeiter sprechen",
    "je veux parler à un humain",
]

DOES_NOT_ASK_FOR_HUMAN = [
    # "support" as a verb, an adjective or a thing.
    "does the kit support USB-C?",
    "Does the app support dark mode?",
    "does it support bluetooth",
    "is this supported on Mac?",
    "which devices are supported",
    "your support article says to restart it",
    "I need the support article for the router",
    "is there support for Linux?",
    "the support team said it ships Monday",
    "Does your agent support refunds?",
    # A person noun that is not a person to talk to.
    "human error on my side, sorry",
    "the human body",
    "is there a human resources department",
    "which agent of change is responsible",
    "I want to be an agent of change",
    "the operator manual",
    "my representative in parliament",
    "my agent number is 42",
    "I need an agent number",
    "who is my account manager?",
    "is customer service open on sundays?",
    "the person who delivered it was rude",
    # Reporting, not asking.
    "I spoke to someone yesterday and they said X",
    "i talked to an agent last week",
    "the agent told me to call my bank",
    # Declining, or asking for something else.
    "I don't want to talk to a human",
    "no need for an agent, thanks",
    "I want someone to deliver it on Monday",
    "transfer my money to someone else",
    "I want to transfer my subscription to someone else",
    "can I speak Spanish with the bot?",
    "can you help me reset my password",
    "I want the managed plan",
    "we need stuff for the party",
    "our operation failed",
    "I need a refund",
    "personal details",
    # Ordinary messages.
    "how do I return my order?",
    "what are your opening hours?",
    "are you a bot?",
    "help",
    "thanks",
    "hello",
    "",
    "!!!",
]


@pytest.mark.parametrize("text", ASKS_FOR_HUMAN)
def test_wants_human_recognises_a_request(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize("text", DOES_NOT_ASK_FOR_HUMAN)
def test_wants_human_ignores_other_messages(text: str) -> None:
    assert not wants_human(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("YES!!", "yes"),
        ("yes please", "yes"),
        ("ok", "yes"),
        ("okay.", "yes"),
        ("sure", "yes"),
        ("sure thing!", "yes"),
        ("yeah", "yes"),
        ("yep", "yes"),
        ("y", "yes"),
        ("please do", "yes"),
        ("go ahead", "yes"),
        ("please", "yes"),
        ("👍", "yes"),
        ("👍🏽", "yes"),
        ("yes, transfer me", "yes"),
        ("sounds good", "yes"),
        ("ok thanks", "yes"),
        ("yes that would be great", "yes"),
        ("Yes please, connect me to a human", "yes"),
        ("yeah go on then", "yes"),
        ("human please", "yes"),
        ("no", "no"),
        ("no thanks", "no"),
        ("No thank you.", "no"),
        ("nope", "no"),
        ("nah", "no"),
        ("nah I'm good", "no"),
        ("I'll try again", "no"),
        ("not now", "no"),
        ("no, let me try again", "no"),
        ("okay, let me try again", "no"),
        ("maybe later", "no"),
        ("no I'd rather keep trying", "no"),
        ("👎", "no"),
        ("what are your opening hours?", "other"),
        ("yes but first tell me X?", "other"),
        ("yes, but first tell me the price", "other"),
        ("ok so how do I return it", "other"),
        ("no, what are your opening hours?", "other"),
        ("how long will it take?", "other"),
        ("my order number is 123", "other"),
        ("yes no", "other"),
        ("thanks", "other"),
        ("hmm", "other"),
        ("", "other"),
    ],
)
def test_offer_reply(text: str, expected: str) -> None:
    assert offer_reply(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "thanks, that's all",
        "perfect, thank you!",
        "thank you so much",
        "that's everything, bye",
        "great thanks",
        "all good now, cheers",
        "👍 thanks",
        "👍",
        "Thanks!",
        "cheers",
        "thx",
        "that's all I needed, thanks",
        "no worries, thanks",
        "no more questions, thank you",
        "got it, thanks a lot",
        "thank you, have a nice day",
        "brilliant, sorted",
        "thanks for your help 🙂",
        "that helps, thank you",
    ],
)
def test_is_done_recognises_a_closing(text: str) -> None:
    assert is_done(text)


@pytest.mark.parametrize(
    "text",
    [
        "thanks, but I still need help",
        "thanks. one more question: how do I reset it",
        "thanks? that didn't answer anything",
        "thanks, can you also check my order?",
        "thanks, what about shipping",
        "thank you, however the link is broken",
        "thanks, it still doesn't work",
        "thanks but that's not what I asked",
        "thank you for waiting, my order number is 123 and it never arrived",
        "great, how do I return it?",
        "perfect, another thing",
        "thanks, I want a human",
        "thanks for nothing",
        "no thanks",
        "not great",
        "ok",
        "hello",
        "what are your opening hours?",
    ],
)
def test_is_done_ignores_a_conversation_that_goes_on(text: str) -> None:
    assert not is_done(text)


@pytest.mark.parametrize(
    "text",
    [
        "that's not what I asked",
        "that is not what i meant",
        "useless",
        "this is useless",
        "pointless",
        "you're not helping",
        "You're not listening",
        "that doesn't answer my question",
        "this doesn't help",
        "stupid bot",
        "this is ridiculous",
        "you don't understand",
        "waste of time",
        "I already told you that",
        "that's wrong",
        "wrong answer",
        "you keep saying the same thing",
        "this makes no sense",
        "thanks for nothing",
        "I'm getting frustrated",
        "read my question!",
    ],
)
def test_is_frustrated_recognises_annoyance(text: str) -> None:
    assert is_frustrated(text)


@pytest.mark.parametrize(
    "text",
    [
        "how do I reset my password?",
        "is this product useful for kids?",
        "I don't understand how to install the app",
        "my order didn't arrive",
        "does the cream help with dry skin?",
        "not sure which size to pick",
        "the manual says it doesn't support Linux",
        "can you explain that again?",
        "sorry if this is a stupid question, but where is my order?",
        "thanks, that helps",
        "what's the difference between the two?",
        "I asked about this last week",
        "my phone is not working",
        "is this the right product for me?",
        "hi",
    ],
)
def test_is_frustrated_ignores_ordinary_messages(text: str) -> None:
    assert not is_frustrated(text)


@pytest.mark.parametrize(
    ("text", "earlier", "expected"),
    [
        ("how do I return my order", ["how can I return an order?"], True),
        ("how do i retrun my order", ["how can I return an order?"], True),
        ("returning orders?", ["how do I return an order"], True),
        ("I still can't return my order", ["hi", "how do I return my order?"], True),
        ("what time do you open", ["what are your opening times?"], True),
        ("where is my parcel", ["where's my parcel??"], True),
        ("how much is shipping to France", ["how do I return my order", "shipping cost to france?"], True),
        ("how do I return my order", ["what are your opening hours"], False),
        ("when do you open?", ["what are your opening hours"], False),
        ("how do I reset my password", ["how do I return my order"], False),
        ("hi", ["hello"], False),
        ("how do I return my order", [], False),
    ],
)
def test_is_rephrase(text: str, earlier: list[str], expected: bool) -> None:
    assert is_rephrase(text, earlier) is expected


def test_is_rephrase_threshold_is_adjustable() -> None:
    earlier = ["return my order and get a refund"]
    assert is_rephrase("how do I return my order", earlier)
    assert not is_rephrase("how do I return my order", earlier, threshold=0.8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello,   WORLD!! ", "hello world"),
        ("Café déjà vu", "cafe deja vu"),
        ("I'd like a human 👩‍💼", "id like a human"),
        ("that’s all", "thats all"),
        ("ß-Straße", "ss strasse"),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


# A question about cancelling a subscription is answered, not handed over; asking a person about it still is. The
# French ones were read as requests for a person before four French cancellation questions joined the train split
# (none of these sentences is in it; the held-out table did not move: docs/detection.md).
CANCELLING = [
    ("Je peux résilier mon abonnement à tout moment ?", False),
    ("Puis-je résilier mon abonnement ?", False),
    ("Je veux résilier mon abonnement", False),
    ("Est-ce que je peux résilier en ligne ?", False),
    ("Can I cancel my subscription at any time?", False),
    ("Kann ich jederzeit kündigen?", False),
    ("¿Puedo cancelar la suscripción en cualquier momento?", False),
    ("Posso cancelar a assinatura quando quiser?", False),
    ("Posso disdire quando voglio?", False),
    ("Je voudrais parler à un conseiller pour résilier mon abonnement", True),
    ("un humain svp, je veux résilier", True),
    ("I want to talk to someone about cancelling my subscription", True),
    ("Ich möchte mit einem Mitarbeiter über meine Kündigung sprechen", True),
]


@pytest.mark.parametrize(("text", "asks"), CANCELLING)
def test_a_question_about_cancelling_is_no_request_for_a_person_unless_it_asks_for_one(text: str, asks: bool) -> None:
    assert wants_human(text) is asks
