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
    "joined": {
        "en": "{name} joined the conversation.",
        "es": "{name} se ha unido a la conversación.",
        "fr": "{name} a rejoint la conversation.",
        "de": "{name} ist dem Gespräch beigetreten.",
        "pt": "{name} entrou na conversa.",
        "it": "{name} si è unito alla conversazione.",
    },
    "back_with_ai": {
        "en": "You're chatting with {name} again.",
        "es": "Vuelves a hablar con {name}.",
        "fr": "Vous discutez de nouveau avec {name}.",
        "de": "Sie schreiben wieder mit {name}.",
        "pt": "Você está falando novamente com {name}.",
        "it": "Stai di nuovo parlando con {name}.",
    },
    "closed": {
        "en": "This conversation was closed.",
        "es": "Esta conversación se ha cerrado.",
        "fr": "Cette conversation a été fermée.",
        "de": "Dieses Gespräch wurde beendet.",
        "pt": "Esta conversa foi encerrada.",
        "it": "Questa conversazione è stata chiusa.",
    },
    "contact_form": {
        "en": "Sorry to keep you waiting: no one from our team is free right now. Leave your contact details and "
              "we'll get back to you as soon as we can.",
        "es": "Perdona la espera: ahora mismo no hay nadie del equipo disponible. Déjanos tus datos de contacto y te "
              "responderemos lo antes posible.",
        "fr": "Désolé pour l'attente : personne de notre équipe n'est disponible pour le moment. Laissez-nous vos "
              "coordonnées et nous vous recontacterons dès que possible.",
        "de": "Entschuldigen Sie die Wartezeit: Gerade ist niemand aus unserem Team frei. Hinterlassen Sie Ihre "
              "Kontaktdaten, dann melden wir uns so bald wie möglich.",
        "pt": "Desculpe a espera: ninguém da nossa equipe está livre agora. Deixe seus dados de contato e "
              "responderemos assim que possível.",
        "it": "Scusa l'attesa: al momento nessuno del nostro team è libero. Lasciaci i tuoi recapiti e ti "
              "ricontatteremo appena possibile.",
    },
    "contact_form_away": {
        "en": "Our team is away right now and back {back}. Leave your contact details and we'll get back to you as "
              "soon as we're in.",
        "es": "Nuestro equipo no está disponible ahora y vuelve {back}. Déjanos tus datos de contacto y te "
              "responderemos en cuanto volvamos.",
        "fr": "Notre équipe est absente pour le moment et revient {back}. Laissez-nous vos coordonnées et nous vous "
              "recontacterons dès notre retour.",
        "de": "Unser Team ist gerade nicht da und wieder erreichbar {back}. Hinterlassen Sie Ihre Kontaktdaten, dann "
              "melden wir uns, sobald wir zurück sind.",
        "pt": "Nossa equipe está ausente agora e volta {back}. Deixe seus dados de contato e responderemos assim "
              "que voltarmos.",
        "it": "Il nostro team ora non è disponibile e torna {back}. Lasciaci i tuoi recapiti e ti ricontatteremo "
              "appena rientriamo.",
    },
    "not_understood": {
        "en": "Sorry, I couldn't find a phone number or an email address in that. Could you send one, e.g. "
              "+44 20 7946 0958 or name@example.com?",
        "es": "Perdona, no encuentro ahí un teléfono ni un correo electrónico. ¿Puedes enviar uno, p. ej. "
              "+34 600 000 000 o nombre@ejemplo.com?",
        "fr": "Désolé, je n'ai trouvé ni numéro de téléphone ni adresse e-mail. Pouvez-vous en envoyer un, par ex. "
              "+33 6 12 34 56 78 ou nom@exemple.fr ?",
        "de": "Entschuldigung, darin finde ich keine Telefonnummer und keine E-Mail-Adresse. Können Sie eine "
              "schicken, z. B. +49 30 123456 oder name@beispiel.de?",
        "pt": "Desculpe, não encontrei aí um telefone nem um e-mail. Pode enviar um, por exemplo "
              "+351 912 345 678 ou nome@exemplo.com?",
        "it": "Scusa, non trovo un numero di telefono né un indirizzo email. Puoi mandarne uno, ad es. "
              "+39 312 345 6789 o nome@esempio.it?",
    },
    "noted": {
        "en": "Thanks, the team will see your message. So that we can get back to you, please send a phone number "
              "or an email address.",
        "es": "Gracias, el equipo verá tu mensaje. Para poder responderte, envíanos un teléfono o un correo "
              "electrónico.",
        "fr": "Merci, l'équipe verra votre message. Pour que nous puissions vous recontacter, envoyez-nous un numéro "
              "de téléphone ou une adresse e-mail.",
        "de": "Danke, das Team sieht Ihre Nachricht. Damit wir uns melden können, schicken Sie uns bitte eine "
              "Telefonnummer oder E-Mail-Adresse.",
        "pt": "Obrigado, a equipe verá sua mensagem. Para podermos responder, envie um telefone ou um e-mail.",
        "it": "Grazie, il team vedrà il tuo messaggio. Per poterti ricontattare, mandaci un numero di telefono o un "
              "indirizzo email.",
    },
    "noted_with_form": {
        "en": "Thanks, the team will see your message. So that we can get back to you, please leave a phone number "
              "or an email address in the form above.",
        "es": "Gracias, el equipo verá tu mensaje. Para poder responderte, deja un teléfono o un correo electrónico "
              "en el formulario de arriba.",
        "fr": "Merci, l'équipe verra votre message. Pour que nous puissions vous recontacter, laissez un numéro de "
              "téléphone ou une adresse e-mail dans le formulaire ci-dessus.",
        "de": "Danke, das Team sieht Ihre Nachricht. Damit wir uns melden können, tragen Sie bitte oben im Formular "
              "eine Telefonnummer oder E-Mail-Adresse ein.",
        "pt": "Obrigado, a equipe verá sua mensagem. Para podermos responder, deixe um telefone ou um e-mail no "
              "formulário acima.",
        "it": "Grazie, il team vedrà il tuo messaggio. Per poterti ricontattare, lascia un numero di telefono o un "
              "indirizzo email nel modulo qui sopra.",
    },
    "follow_up": {
        "en": "Thanks, we've added this to your request. Our team will follow up at {reach}.",
        "es": "Gracias, lo hemos añadido a tu solicitud. Nuestro equipo te contactará en {reach}.",
        "fr": "Merci, nous l'avons ajouté à votre demande. Notre équipe vous recontactera au {reach}.",
        "de": "Danke, wir haben das zu Ihrer Anfrage hinzugefügt. Unser Team meldet sich unter {reach}.",
        "pt": "Obrigado, adicionamos isso ao seu pedido. Nossa equipe entrará em contato em {reach}.",
        "it": "Grazie, l'abbiamo aggiunto alla tua richiesta. Il nostro team ti ricontatterà a {reach}.",
    },
    "follow_up_no_reach": {
        "en": "Thanks, we've added this to your request. Our team will follow up at the details you left.",
        "es": "Gracias, lo hemos añadido a tu solicitud. Nuestro equipo te contactará con los datos que dejaste.",
        "fr": "Merci, nous l'avons ajouté à votre demande. Notre équipe vous recontactera avec les coordonnées "
              "laissées.",
        "de": "Danke, wir haben das zu Ihrer Anfrage hinzugefügt. Unser Team meldet sich über die angegebenen Daten.",
        "pt": "Obrigado, adicionamos isso ao seu pedido. Nossa equipe entrará em contato pelos dados que você deixou.",
        "it": "Grazie, l'abbiamo aggiunto alla tua richiesta. Il nostro team ti ricontatterà ai recapiti lasciati.",
    },
    "csat_question": {
        "en": "How did we do? Reply with a number from 1 (bad) to 5 (great).",
        "es": "¿Qué tal lo hemos hecho? Responde con un número del 1 (mal) al 5 (genial).",
        "fr": "Comment avons-nous été ? Répondez par un chiffre de 1 (mauvais) à 5 (excellent).",
        "de": "Wie waren wir? Antworten Sie mit einer Zahl von 1 (schlecht) bis 5 (sehr gut).",
        "pt": "Como nos saímos? Responda com um número de 1 (ruim) a 5 (ótimo).",
        "it": "Come siamo andati? Rispondi con un numero da 1 (male) a 5 (ottimo).",
    },
    "csat_thanks": {
        "en": "Thank you for your rating!",
        "es": "¡Gracias por tu valoración!",
        "fr": "Merci pour votre note !",
        "de": "Danke für Ihre Bewertung!",
        "pt": "Obrigado pela sua avaliação!",
        "it": "Grazie per la tua valutazione!",
    },
}
#: What Baton fills into a text: a name (the customer's, the agent's or the AI's), how the team will reach the
#: customer, when the team is back.
PLACEHOLDERS = ("name", "reach", "back")
#: The contact form's field labels, per field and language (the form goes out in the conversation's language).
LABELS: dict[str, dict[str, str]] = {
    "name": {"en": "Name", "es": "Nombre", "fr": "Nom", "de": "Name", "pt": "Nome", "it": "Nome"},
    "phone": {"en": "Phone", "es": "Teléfono", "fr": "Téléphone", "de": "Telefon", "pt": "Telefone", "it": "Telefono"},
    "email": {"en": "Email", "es": "Correo electrónico", "fr": "E-mail", "de": "E-Mail", "pt": "E-mail",
              "it": "Email"},
    "message": {"en": "Message", "es": "Mensaje", "fr": "Message", "de": "Nachricht", "pt": "Mensagem",
                "it": "Messaggio"},
}
#: The words that join two ways to reach the customer in the confirmation ("+44… or maria@…").
OR: dict[str, str] = {"en": "or", "es": "o", "fr": "ou", "de": "oder", "pt": "ou", "it": "o"}


def say(key: str, language: str, overrides: Mapping[str, Mapping[str, str]] | None = None, **values: str) -> str:
    """The text `key` in `language` (English for one Baton does not speak), the workspace's wording first."""
    own = (overrides or {}).get(key, {})
    builtin: Mapping[str, str] = TEXTS[key]
    text = own.get(language) or builtin.get(language) or own.get("en") or builtin["en"]
    return text.format(**values) if values else text


def every(key: str, default: str, overrides: Mapping[str, Mapping[str, str]] | None = None,
          **values: str) -> dict[str, str]:
    """The text `key` in every language, for the state script to pick the conversation's (its stored `language`),
    `default` (the workspace's language) when it has none: {language: text, ..., "default": default}."""
    said: dict[str, str] = {language: say(key, language, overrides, **values) for language in LANGUAGES}
    return {**said, "default": default if default in LANGUAGES else "en"}


def unknown(overrides: Mapping[str, Mapping[str, str]]) -> str | None:
    """What is wrong with a workspace's `texts` (an unknown key, language or placeholder), as a path; else None."""
    for key, wordings in overrides.items():
        if key not in TEXTS:
            return f"texts.{key}: no such text (known: {', '.join(TEXTS)})"
        for language, text in wordings.items():
            if language not in LANGUAGES:
                return f"texts.{key}.{language}: no such language (known: {', '.join(LANGUAGES)})"
            try:
                text.format(**dict.fromkeys(PLACEHOLDERS, ""))
            except (KeyError, IndexError, ValueError) as exc:
                known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
                return f"texts.{key}.{language}: a placeholder Baton does not fill ({exc}); use {known}"
    return None
