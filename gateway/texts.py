"""What Baton itself says to the customer, in the six languages it understands, and the workspace's own wording.

Each text has a key (what config.yaml's `workspaces[].texts` overrides), and one wording per language. The
conversation's language is the customer's (`gateway.detection.language`), else the workspace's `language`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Language = Literal["en", "es", "fr", "de", "pt", "it"]
LANGUAGES: tuple[Language, ...] = ("en", "es", "fr", "de", "pt", "it")

TEXTS: dict[str, dict[str, str]] = {  # key -> language -> wording, for every language in LANGUAGES
    "handover_notice": {
        "en": "I'm connecting you with a member of our team. They'll be with you shortly.",
        "es": "Te estoy pasando con una persona de nuestro equipo. Enseguida estará contigo.",
        "fr": "Je vous mets en relation avec un membre de notre équipe. Il sera avec vous dans un instant.",
        "de": "Ich verbinde Sie mit jemandem aus unserem Team. Gleich ist jemand für Sie da.",
        "pt": "Estou transferindo você para uma pessoa da nossa equipe. Ela já vai atender você.",
        "it": "Ti sto mettendo in contatto con una persona del nostro team. Sarà da te a breve.",
    },
    "offer": {
        "en": "Would you like me to transfer you to a human agent?",
        "es": "¿Quieres que te pase con una persona de nuestro equipo?",
        "fr": "Voulez-vous que je vous mette en relation avec un conseiller ?",
        "de": "Möchten Sie, dass ich Sie mit einem Mitarbeiter verbinde?",
        "pt": "Quer que eu transfira você para um atendente?",
        "it": "Vuoi che ti metta in contatto con un operatore?",
    },
    "offer_declined": {
        "en": "No problem, let's keep going. What else can I help you with?",
        "es": "Sin problema, sigamos. ¿En qué más te puedo ayudar?",
        "fr": "Pas de souci, continuons. Que puis-je faire d'autre pour vous ?",
        "de": "Kein Problem, machen wir weiter. Wobei kann ich Ihnen sonst helfen?",
        "pt": "Sem problema, vamos continuar. Em que mais posso ajudar?",
        "it": "Nessun problema, andiamo avanti. In cos'altro posso aiutarti?",
    },
    "sorry": {
        "en": "I'm sorry this isn't helping.",
        "es": "Siento que esto no te esté ayudando.",
        "fr": "Je suis désolé que cela ne vous aide pas.",
        "de": "Es tut mir leid, dass Ihnen das nicht weiterhilft.",
        "pt": "Desculpe, vejo que isso não está ajudando.",
        "it": "Mi dispiace che questo non ti sia d'aiuto.",
    },
    "attachment": {
        "en": "I can't view attachments here, so I may not be able to help with this one.",
        "es": "Aquí no puedo ver archivos adjuntos, así que quizá no pueda ayudarte con esto.",
        "fr": "Je ne peux pas voir les pièces jointes ici, je ne pourrai peut-être pas vous aider pour celle-ci.",
        "de": "Anhänge kann ich hier nicht ansehen, daher kann ich dabei vielleicht nicht helfen.",
        "pt": "Não consigo ver anexos aqui, então talvez não consiga ajudar com isso.",
        "it": "Qui non posso vedere gli allegati, quindi forse non posso aiutarti con questo.",
    },
    "text_only": {
        "en": "I can't view attachments here, so this answer is about the text of your message.",
        "es": "Aquí no puedo ver archivos adjuntos, así que respondo al texto de tu mensaje.",
        "fr": "Je ne peux pas voir les pièces jointes ici, je réponds donc au texte de votre message.",
        "de": "Anhänge kann ich hier nicht ansehen, daher antworte ich auf den Text Ihrer Nachricht.",
        "pt": "Não consigo ver anexos aqui, então respondo ao texto da sua mensagem.",
        "it": "Qui non posso vedere gli allegati, quindi rispondo al testo del tuo messaggio.",
    },
    "goodbye": {
        "en": "You're welcome! I'm closing this chat now. Just write again any time you need help.",
        "es": "¡De nada! Cierro ahora esta conversación. Escríbenos cuando necesites ayuda.",
        "fr": "Avec plaisir ! Je ferme cette conversation. Écrivez-nous quand vous voulez si besoin.",
        "de": "Gern geschehen! Ich schließe diesen Chat jetzt. Schreiben Sie uns jederzeit wieder.",
        "pt": "De nada! Vou encerrar esta conversa agora. Escreva de novo quando precisar.",
        "it": "Prego! Chiudo questa chat. Scrivici di nuovo quando ti serve aiuto.",
    },
    "ask_for_reach": {
        "en": "Thanks, {name}. Could you send a phone number or an email address we can reach you at?",
        "es": "Gracias, {name}. ¿Nos envías un teléfono o un correo electrónico para contactarte?",
        "fr": "Merci, {name}. Pouvez-vous nous envoyer un numéro de téléphone ou une adresse e-mail ?",
        "de": "Danke, {name}. Schicken Sie uns eine Telefonnummer oder E-Mail-Adresse, unter der wir Sie erreichen?",
        "pt": "Obrigado, {name}. Pode enviar um telefone ou um e-mail para entrarmos em contato?",
        "it": "Grazie, {name}. Puoi mandarci un numero di telefono o un indirizzo email per ricontattarti?",
    },
    "form_declined": {
        "en": "No problem. If you change your mind, just write here: our team will see it.",
        "es": "Sin problema. Si cambias de idea, escríbenos aquí: nuestro equipo lo verá.",
        "fr": "Pas de souci. Si vous changez d'avis, écrivez-nous ici : notre équipe le verra.",
        "de": "Kein Problem. Wenn Sie es sich anders überlegen, schreiben Sie einfach hier: unser Team sieht es.",
        "pt": "Sem problema. Se mudar de ideia, é só escrever aqui: nossa equipe vai ver.",
        "it": "Nessun problema. Se cambi idea, scrivi qui: il nostro team lo vedrà.",
    },
    "confirmation": {
        "en": "Thank you{name}! We'll get back to you at {reach}.",
        "es": "¡Gracias{name}! Te contactaremos en {reach}.",
        "fr": "Merci{name} ! Nous vous recontacterons au {reach}.",
        "de": "Vielen Dank{name}! Wir melden uns unter {reach}.",
        "pt": "Obrigado{name}! Entraremos em contato em {reach}.",
        "it": "Grazie{name}! Ti ricontatteremo a {reach}.",
    },
}
#: The words that join two ways to reach the customer in the confirmation ("+44… or maria@…").
OR: dict[str, str] = {"en": "or", "es": "o", "fr": "ou", "de": "oder", "pt": "ou", "it": "o"}


def say(key: str, language: str, overrides: Mapping[str, Mapping[str, str]] | None = None, **values: str) -> str:
    """The text `key` in `language` (English for one Baton does not speak), the workspace's wording first."""
    own = (overrides or {}).get(key, {})
    builtin: Mapping[str, str] = TEXTS[key]
    text = own.get(language) or builtin.get(language) or own.get("en") or builtin["en"]
    return text.format(**values) if values else text


def unknown(overrides: Mapping[str, Mapping[str, str]]) -> str | None:
    """What is wrong with a workspace's `texts` (an unknown key, language or placeholder), as a path; else None."""
    for key, wordings in overrides.items():
        if key not in TEXTS:
            return f"texts.{key}: no such text (known: {', '.join(TEXTS)})"
        for language, text in wordings.items():
            if language not in LANGUAGES:
                return f"texts.{key}.{language}: no such language (known: {', '.join(LANGUAGES)})"
            try:
                text.format(name="", reach="")
            except (KeyError, IndexError, ValueError) as exc:
                return f"texts.{key}.{language}: a placeholder Baton does not fill ({exc}); use {{name}}, {{reach}}"
    return None
