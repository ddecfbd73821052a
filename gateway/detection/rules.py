"""The few rules that must never fail, checked before the learned models: explicit requests for a person.

Everything here is matched against `normalise`d text (no accents, apostrophes or punctuation). The models
generalise; these rules only guarantee the plainest requests in each language, whatever the model says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.detection.features import normalise

_PEOPLE = (
    r"(?:humans?|human being|person|people|agents?|someone|somebody|anyone|representative|rep|operator|manager"
    r"|supervisor|support|customer (?:service|support|care)|staff|team member|advis[eo]r)"
)
_EN_PERSON = rf"(?:(?:a|an|the|some|one of your|your) )?(?:(?:real|live|actual|human) )*{_PEOPLE}"
_BOTS = r"(?:bot|bots|robot|chatbot|machine|ai|maquina|robo|roboter)"
_FILLER = (
    r"(?: (?:please|pls|plz|now|asap|thanks|svp|stp|por favor|porfa|xfa|bitte|per favore|pfv|pf|por favor"
    r"|obrigad[oa]|merci|gracias|grazie|danke))*"
)
_BARE_NOUNS = (
    r"(?:humans?|human being|(?:live |real )?agent|operator|representative|represenative|reprasentative|support"
    r"|customer (?:service|support|care)"
    r"|(?:a )?real person|humano|agente|atencion al cliente|un humain|humain|un conseiller|service client"
    r"|mensch|ein mensch|mitarbeiter|kundenservice|kundendienst|atendente|atendimento humano|umano|operatore"
    r"|assistenza clienti)"
)

_REQUESTS = [
    # English: 'talk to a human', 'speak to someone', 'transfer to agent', 'get me a real person'.
    rf"\b(?:talk|speak|chat|tlk|spk|speek) (?:to|with|w) {_EN_PERSON}\b",
    rf"\b(?:transfer|connect|put) (?:me )?(?:to|with|through to) {_EN_PERSON}\b",
    rf"\b(?:contact|reach) {_EN_PERSON}\b",
    r"\b(?:get|give) me (?:a |an )?(?:(?:real|live|actual) )*(?:human|person|agent|operator|representative)\b",
    r"\b(?:i|we) (?:want|need|wanna) (?:a |an )?(?:(?:real|live|actual) )*(?:human|person|agent)\b"
    r"(?! (?:number|id|code|portal|login|error|body|resources))",
    r"\b(?:i|we) need (?:tech |technical |customer )?support\b(?! (?:for|of|on|article|page|number))",
    r"\b(?:is|are) (?:there )?(?:any ?(?:one|body)|some ?(?:one|body)|any humans?) (?:there|here|around)\b",
    # Spanish, French, German, Portuguese, Italian.
    r"\b(?:hablar|comunicarme|pasame|pasar|transfiereme|transferirme) (?:con )?(?:un |una |el |la |algun )?"
    r"(?:humano|persona|agente|asesor|operador|alguien|encargado|supervisor)\b",
    r"\bhay alguien\b",
    r"\bparler (?:a|avec) (?:un |une |le |la )?(?:vrai |vraie )?"
    r"(?:humain|personne|agent|conseiller|operateur|quelqu ?un|responsable)\b",
    r"\by a(?: t)?(?: il)? quelqu ?un\b",
    r"\bmit (?:einem |einer |jemandem|dem |der )?(?:echten )?"
    r"(?:menschen|mitarbeiter\w*|person|berater\w*|agenten|kundenservice|support)\b(?: \w+)? (?:sprechen|reden)\b",
    r"\bist (?:da|hier) jemand\b|\bist jemand (?:da|hier)\b",
    r"\bfalar (?:com )?(?:um |uma |o |a |alguem )?(?:humano|pessoa|atendente|alguem|suporte|gerente|supervisor)\b",
    r"\batendimento humano\b",
    r"\btem alguem (?:ai|a)\b",
    r"\bparlare con (?:un |una |qualcuno|l |il |lo )?"
    r"(?:umano|persona|operatore|qualcuno|agente|consulente|responsabile|assistenza)\b",
    r"\bce qualcuno\b",
    # Refusing the bot is asking for a person, in any of the languages.
    rf"\b(?:dont|do not|not|no|no quiero|pas|nao quero|non voglio|keinen?|will keinen?)"
    rf"(?: (?:want|wanna|to|talk|speak|chat|hablar|parler|falar|parlare|con|com|a|with|envie de|de|un|una|um|uma))*"
    rf" {_BOTS}\b",
]
_REQUEST = re.compile("|".join(f"(?:{pattern})" for pattern in _REQUESTS))
_BARE = re.compile(rf"^(?:(?:hi|hello|hey|hola|bonjour|hallo|oi|ciao) )?{_BARE_NOUNS}{_FILLER}$")
# 'I don't want to talk to a human', 'no need for an agent': a refusal just before the request.
_REFUSAL = re.compile(
    r"\b(?:dont|do not|never|no need|not|no quiero|ne veux pas|nao quero|non voglio|kein\w*)(?: \w+){0,2} $"
)


_DECLINES_PERSON = re.compile(
    r"\b(?:dont|do not|no need to|not asking for)(?: \w+){0,6} (?:human|person|agent|anyone|anybody|someone)\b"
    r"|\bno necesito (?:un |una |a )?(?:agente|persona|humano|nadie)\b"
    r"|\bpas besoin d ?(?:un |une )?(?:conseiller|agent)\b|\bbrauche (?:keinen|niemanden)\b"
    r"|\bnao preciso de (?:atendente|ninguem)\b|\bnon mi serve (?:un operatore|nessuno)\b"
)


def refuses_person(text: str) -> bool:
    """'I don't want to talk to a human', 'no need to transfer me to anyone': never a request."""
    return bool(_DECLINES_PERSON.search(normalise(text)))


def _refused(text: str, start: int) -> bool:
    return bool(_REFUSAL.search(text[:start]))


def asks_explicitly(text: str) -> bool:
    """An unmistakable request for a person ('talk to a human', 'agent', 'hay alguien ahí')."""
    plain = normalise(text)
    if _BARE.match(plain):
        return True
    return any(not _refused(plain, match.start()) or re.search(_BOTS + r"\b", match.group())
               for match in _REQUEST.finditer(plain))


def mentions(text: str, phrases: Sequence[str]) -> bool:
    """Whether the text contains one of the phrases as whole words, both compared normalised."""
    padded = f" {normalise(text)} "
    return any(f" {phrase} " in padded for phrase in map(normalise, phrases) if phrase)


_DECLINE = re.compile(r"^(?:no|nope|nah|not)\b(?! (?:worries|problem|more|further|other))(?: \w+){0,2}$")


# An acknowledgement alone ('ok') says the customer read the answer, not that they are done with us.
_ACKNOWLEDGEMENT = re.compile(r"^(?:ok|okay|okey|k|kk|alright|right|hmm+|vale|d ?accord|va bene|ta|ta bom)$")


def declines(text: str) -> bool:
    """'no thanks', 'nope': a short answer to a question, not a goodbye ('no worries, thanks' is one)."""
    return bool(_DECLINE.match(normalise(text)))


def only_acknowledges(text: str) -> bool:
    """'ok', 'alright': an acknowledgement, not a goodbye."""
    return bool(_ACKNOWLEDGEMENT.match(normalise(text)))


# Product rule (issue 8): 'thanks! one more thing…' is not a goodbye; a trailing ellipsis announces more.
_MORE_TO_SAY = re.compile(r"\b(?:one more (?:thing|question)|another (?:thing|question)|but|still)\b")


def says_more(text: str) -> bool:
    """'thanks, but…', 'one more thing…': the customer has more to say."""
    return bool(_MORE_TO_SAY.search(normalise(text))) or text.rstrip().endswith(("…", "..."))


def asks_question(text: str) -> bool:
    """A question mark anywhere ('¿' included): the message carries a question."""
    return "?" in text or "\u00bf" in text or "\uff1f" in text
