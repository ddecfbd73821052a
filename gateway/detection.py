"""Deterministic classifiers for customer messages: human requests, offer replies, closings, frustration."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

OfferReply = Literal["yes", "no", "other"]
Phrase = tuple[str, ...]


def _words(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


def _phrases(spec: str) -> list[Phrase]:
    return [tuple(phrase.split()) for phrase in spec.split(",")]


_PERSONS = _words(
    "human humans person persons people agent agents someone somebody anyone anybody operator operators"
    " representative representatives rep reps staff manager supervisor employee advisor adviser consultant"
    " support customerservice customersupport customercare helpdesk supportteam livechat"
    " agente humano persona alguien operador asesor humain personne conseiller operateur quelquun"
)
_PRONOUNS = _words("someone somebody anyone anybody people")  # 'I want someone to deliver it' is no request
_CUES = frozenset(
    _phrases(
        "talk, speak, chat, connect, transfer, contact, reach, escalate, forward, pass, switch, redirect,"
        " need, want, wanna, request, put me, get me, give me, find me, be transferred, be connected,"
        " would like, id like, can i, could i, may i, is there, hablar, comunicarme, pasar, pasarme,"
        " transferir, parler, passer, transferer"
    )
)
_GLUE = _words(
    "to with me us a an the some one of your real live tech technical actual actually proper human through"
    " in touch directly right now please pls plz w get have speak talk chat connect transfer any another"
    " con un una al avec une"
)
_FILLERS = _GLUE | _words("hi hello hey yo thanks thank thx ty you ok okay asap just i can could help")
_BLOCKERS = _words(
    "error errors article articles manual manuals page pages docs documentation guide link resources body"
    " number code portal login"
)
# After these, 'support for Linux' is about the product rather than a team to talk to.
_WEAK_CUES = frozenset(_phrases("need, want, wanna, is there, would like, id like, request"))
_NEGATORS = _words("dont not never without didnt doesnt wont")
_ASSIST = _words("help assist talk speak chat")
_COMPOUND = re.compile(r"\b(?:customer (?:service|support|care)|help desk|support team|live chat)\b")
_TYPO_TARGETS = sorted(_words(
    "human person agent someone somebody operator representative transfer speak support customer service"
    " connect manager supervisor"))  # fmt: skip
_NOT_TYPOS = _words("manage managed manages speck steak sneak spear stuff")
_KNOWN_TYPOS = {"costumer": "customer", "costumers": "customer", "humen": "human"}
# 'a human would be great': a person named as what would help, the request said as a wish.
_PERSON_WOULD_HELP = re.compile(
    r"\b(?:human|person|agent|representative|operator|manager|supervisor|someone|somebody)"
    r" (?:would|could) (?:really )?(?:be (?:great|good|nice|perfect|helpful|better|ideal|lovely|brilliant"
    r"|awesome|amazing|wonderful|appreciated)|help)\b"
)
_GERMAN_REQUEST = re.compile(  # German puts the verb last: 'mit einem Menschen sprechen'
    r"\b(?:mensch|menschen|mitarbeiter\w*|berater\w*|person|agenten) (?:\w+ )?(?:sprechen|reden)\b"
)

_EMOJI_WORDS = str.maketrans(
    dict.fromkeys(["\N{THUMBS UP SIGN}", "\N{OK HAND SIGN}", "\N{WHITE HEAVY CHECK MARK}"], " thumbsup ")
    | dict.fromkeys(["\N{THUMBS DOWN SIGN}", "\N{CROSS MARK}", "\N{NO ENTRY SIGN}"], " thumbsdown ")
    | {"\N{PERSON WITH FOLDED HANDS}": " please "}
)
_YES = _phrases(
    "yes, y, ya, yah, yeah, yea, yep, yup, yas, sure, sure thing, absolutely, definitely, certainly,"
    " of course, please do, go ahead, go for it, do it, do that, sounds good, sounds great,"
    " that would be great, that would be good, would be great, transfer me, connect me, put me through,"
    " id like that, i would like that, lets do it, why not, thumbsup, si, oui, ja,"
    # A positive reply to the offer is a yes: 'great', 'perfect', 'that'd help'.
    " great, perfect, awesome, brilliant, excellent, lovely, wonderful, fantastic, amazing, that would help,"
    " thatd help, would help, that helps, that would be perfect, thatd be perfect, thatd be great,"
    " that would be nice, thatd be nice, that would be helpful, thatd be helpful"
)
_NO = _phrases(
    "no, n, nope, nah, not now, not yet, not really, no need, no way, never mind, nevermind, dont, do not,"
    " ill try again, i will try again, let me try again, try again, maybe later, later, im good, im fine,"
    " im ok, thumbsdown, nein, non"
)
_WEAK_YES = _phrases("ok, okay, k, kk, alright, fine, please, pls, plz")
_FILLER = _phrases("thanks, thank you, thx, ty, hi, hello, then, well, um, oh")
_OFFER_PHRASES = {
    phrase: label for label, group in (("yes", _YES), ("no", _NO), ("weak", _WEAK_YES), ("filler", _FILLER))
    for phrase in group
}  # fmt: skip
_HEDGES = _words(
    "but first wait actually although though however how what why when where which who can could"
    " is are do does did will would should"
)
_LONGEST_OFFER_PHRASE = max(len(phrase) for phrase in _OFFER_PHRASES)

_DONE_SIGNAL = re.compile(
    r"\b(?:(?:thats|that is) (?:all|everything|it)(?: i need(?:ed)?| for now| thanks)?|all i need(?:ed)?"
    r"|thanks?|thank (?:you|u)|thx|ty|tysm|cheers|bye|goodbye|see (?:you|ya)|nothing else"
    r"|all (?:good|set|sorted|done|fixed)|(?:sorted|solved|resolved|fixed)(?: now)?|perfect|great|awesome"
    r"|brilliant|excellent|got it|much appreciated|appreciate it|thumbsup|no (?:worries|problem)"
    r"|no (?:more|further|other) questions?"
    r"|(?:that|this) (?:helps|helped)|works now|have a (?:good|nice|great) (?:day|one))\b"
)
_MAX_DONE_EXTRA_WORDS = 6  # 'thanks for waiting, my order number is 123' carries on the conversation
# A clause that opens like a question asks something, question mark or not: 'perfect, is there a warranty'.
_ASKS = re.compile(
    r"^(?:is|are|do|does|did|can|could|will|would|should|may|what|how|why|when|where|which|who)\b")
_DECLINE = re.compile(r"^(?:no|nope|nah|not)\b(?! (?:worries|problem|more|further|other))")
_CONTINUATION = _words(
    "but still also another however though although except question questions problem issue need want how"
    " what why when where which who can could didnt doesnt dont isnt wasnt havent hasnt cant wont not"
    " wrong yet more"
)

_HARMLESS_INSULTS = re.compile(r"\b(?:stupid|dumb|silly) questions?\b")
_FRUSTRATION = re.compile(
    r"\bnot what i (?:asked|meant|wanted|said|need(?:ed)?|was asking|am asking)\b"
    r"|\b(?:useless|pointless|hopeless|rubbish|garbage|ridiculous|absurd|stupid|dumb|idiot\w*|pathetic"
    r"|worthless|unhelpful|infuriating|frustrat\w*|wtf|ffs)\b"
    r"|\bwaste of (?:my )?time\b|\bthanks for nothing\b|\bmakes no sense\b"
    r"|\bnot (?:helpful|helping|listening)\b"
    r"|\b(?:this|that|it|which|you|your answer|that answer) (?:still )?(?:doesnt|does not|didnt|did not"
    r"|isnt|is not|dont|do not) (?:help|answer|make (?:any )?sense)"
    r"|\b(?:you|u) (?:still |just )?(?:dont|do not|didnt|did not|cant|cannot|can not|arent|are not)"
    r" (?:understand|get it|listen|read|help)"
    r"|\b(?:youre|you are|ur|u r) not (?:understanding|getting it|reading)\b"
    r"|\balready (?:told|said|asked|explained)\b|\bi just (?:told|said) (?:you|that)\b"
    r"|\b(?:thats|that is|this is|your answer is) (?:wrong|not right|incorrect)\b|\bwrong answer\b"
    r"|\bread my (?:message|question)\b|\banswer (?:my|the) (?:damn |bloody )?question\b"
    r"|\b(?:same|that) (?:answer|thing|reply) again\b|\b(?:going|go) (?:round|around) in circles\b"
    r"|\b(?:stop|keep) (?:repeating|saying)\b"
)

_STOP_WORDS = _words(
    "a an the i me my mine we our you your it its this that these those is are was were be been am do does"
    " did done have has had can could would should will shall may might must how what why when where which"
    " who whom there here to of for on in at by with from about into up out as and or but if so not no"
    " please hi hello hey thanks thank still again just any some way want need know tell get help"
    " anyone someone im ive id much many whats wheres hows whos thats theres youre cant dont doesnt isnt"
)
_SUFFIXES = (
    ("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh"), ("ing", ""), ("ed", ""),
    ("s", ""),
)  # fmt: skip


def normalise(text: str) -> str:
    """Lowercase, strip accents, apostrophes, punctuation and emoji, and collapse whitespace."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    plain = re.sub(r"['\u2018\u2019`\u00b4]", "", plain)
    return " ".join(re.sub(r"[\W_]+", " ", plain).split())


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance: a swap of neighbouring letters counts as one edit."""
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                best = min(best, before[j - 2] + 1)
            current.append(best)
        before, previous = previous, current
    return previous[-1]


def _close(word: str, target: str) -> bool:
    """Whether word is a plausible misspelling of target (same first letter, one or two edits)."""
    allowed = 2 if len(target) >= 12 else 1
    similar = word[:1] == target[:1] and abs(len(word) - len(target)) <= allowed
    return similar and _distance(word, target) <= allowed


def _fix_typo(word: str) -> str:
    if word in _KNOWN_TYPOS:
        return _KNOWN_TYPOS[word]
    if len(word) < 5 or word in _NOT_TYPOS or word in _PERSONS or word in _TYPO_TARGETS:
        return word
    return next((target for target in _TYPO_TARGETS if _close(word, target)), word)


def _request_tokens(text: str) -> list[str]:
    """Normalised words with typos fixed and 'customer service' style compounds joined into one word."""
    fixed = " ".join(_fix_typo(word) for word in normalise(text).split())
    return _COMPOUND.sub(lambda match: match.group().replace(" ", ""), fixed).split()


def _person_at(tokens: list[str], j: int, strict: bool) -> bool:
    """Whether tokens[j] names someone to talk to rather than a thing ('support article', 'human error')."""
    word, after = (tokens[j], tokens[j + 1 : j + 3]) if j < len(tokens) else ("", [])
    if word not in _PERSONS or after[:1] and after[0] in _BLOCKERS:
        return False
    if strict and word == "support" and after[:1] and after[0] in {"for", "of", "on", "in"}:
        return False  # 'is there support for Linux', 'I need support for 4K' ask about the product
    return not (word in _PRONOUNS and after[:1] == ["to"] and not set(after[1:]) & _ASSIST)


def _asks_after(tokens: list[str], start: int, strict: bool) -> bool:
    """Whether, skipping filler words from start, the next word names a person."""
    j = start
    while j < len(tokens) and tokens[j] in _GLUE and not _person_at(tokens, j, strict):
        j += 1
    return _person_at(tokens, j, strict)


def _negated(tokens: list[str], i: int) -> bool:
    """'I don't want a human', 'no need for an agent'; a leading 'no, I want a human' still asks."""
    before = tokens[max(0, i - 3) : i]
    return bool(set(before) & _NEGATORS) or before[-1:] == ["no"]


def _has_request_phrase(tokens: list[str]) -> bool:
    for i in range(len(tokens)):
        if _negated(tokens, i):
            continue
        for cue in (tuple(tokens[i : i + 1]), tuple(tokens[i : i + 2])):
            if cue in _CUES and _asks_after(tokens, i + len(cue), strict=cue in _WEAK_CUES):
                return True
    return False


def _is_bare_request(tokens: list[str]) -> bool:
    """A short message that is essentially just a person noun: 'support', 'a real person please'."""
    meaningful = [t for t in tokens if t in _PERSONS or not (t in _FILLERS or (t,) in _CUES)]
    return 0 < len(meaningful) <= 4 and all(t in _PERSONS for t in meaningful)


def has_phrase(text: str, phrases: Sequence[str]) -> bool:
    """Whether the text holds one of a workspace's own phrases (normalised, as whole words)."""
    padded = f" {normalise(text)} "
    return any(f" {normalise(phrase)} " in padded for phrase in phrases if normalise(phrase))


def wants_human(text: str, phrases: Sequence[str] = ()) -> bool:
    """The customer asks to talk to a person."""
    if has_phrase(text, phrases):
        return True
    tokens = _request_tokens(text)
    return (
        _has_request_phrase(tokens)
        or _is_bare_request(tokens)
        or bool(_GERMAN_REQUEST.search(" ".join(tokens)))
        or bool(_PERSON_WOULD_HELP.search(" ".join(tokens)))
    )


def _emoji_tokens(text: str) -> list[str]:
    return normalise(text.translate(_EMOJI_WORDS)).split()


def _label_phrases(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Labels of the known reply phrases at the start of tokens, and the tokens left after them."""
    labels: list[str] = []
    i = 0
    while i < len(tokens):
        sizes = range(min(_LONGEST_OFFER_PHRASE, len(tokens) - i), 0, -1)
        size = next((n for n in sizes if tuple(tokens[i : i + n]) in _OFFER_PHRASES), 0)
        if not size:
            break
        labels.append(_OFFER_PHRASES[tuple(tokens[i : i + size])])
        i += size
    return labels, tokens[i:]


def _verdict(labels: list[str]) -> OfferReply:
    found = set(labels)
    if "no" in found:
        return "other" if "yes" in found else "no"
    return "yes" if found & {"yes", "weak"} else "other"


def offer_reply(text: str) -> OfferReply:
    """How the customer answered 'Would you like me to transfer you to a human agent?'."""
    labels, rest = _label_phrases(_emoji_tokens(text))
    if not rest:
        return _verdict(labels)
    if "no" not in labels and wants_human(" ".join(rest)):
        return "yes"
    if "?" in text or not {"yes", "no"} & set(labels) or rest[0] in _HEDGES:
        return "other"  # 'yes but first tell me…', 'ok so how do I…': a new question, not an answer
    return _verdict(labels)


def is_done(text: str, phrases: Sequence[str] = ()) -> bool:
    """The customer signals they need nothing more ('thanks, that's all'), not 'thanks, but I still need…'."""
    if "?" in text:
        return False
    if has_phrase(text, phrases):
        return True
    joined = " ".join(_emoji_tokens(text))
    if _DECLINE.match(joined) or not _DONE_SIGNAL.search(joined):
        return False
    rest = _DONE_SIGNAL.sub(" ", joined).split()
    if len(rest) > _MAX_DONE_EXTRA_WORDS or set(rest) & _CONTINUATION or _asks(text, rest):
        return False
    return not is_frustrated(text) and not wants_human(text)


def _asks(text: str, rest: list[str]) -> bool:
    """Whether what is left after the closing words, or any clause, opens like a question."""
    clauses = [normalise(clause) for clause in re.split(r"[,.;:!\n]", text)]
    return any(_ASKS.match(clause) for clause in [" ".join(rest), *clauses])


def is_frustrated(text: str) -> bool:
    """The customer is annoyed: 'that's not what I asked', 'useless', 'you're not listening'."""
    return bool(_FRUSTRATION.search(_HARMLESS_INSULTS.sub(" ", normalise(text))))


def _stem(word: str) -> str:
    if word.endswith("ss"):
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def _content_words(text: str) -> set[str]:
    return {_stem(word) for word in normalise(text).split() if word not in _STOP_WORDS}


def _near_any(word: str, others: set[str]) -> bool:
    return len(word) >= 5 and any(_close(word, other) for other in others)


def _similarity(first: set[str], second: set[str]) -> float:
    """Token-set Jaccard similarity in which near-identical spellings count as the same word."""
    if not first or not second:
        return 0.0
    shared = sum(1 for word in first if word in second or _near_any(word, second))
    shared = min(shared, len(second))
    return shared / (len(first) + len(second) - shared)


def is_rephrase(text: str, earlier: Sequence[str], threshold: float = 0.6) -> bool:
    """The customer is repeating or rephrasing one of their earlier questions."""
    words = _content_words(text)
    return any(_similarity(words, _content_words(previous)) >= threshold for previous in earlier)
