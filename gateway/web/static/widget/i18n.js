// The widget's own words, in the six languages Baton speaks to customers (gateway/texts.py says the server's).
// The language is the server's: the conversation's once it has read the customer's (the history's
// `conversation.language`, a contact form's `language`), else the workspace's (/config's `language`), so the
// widget's buttons and Baton's messages speak one language.

const WORDS = {
  en: {
    rate_title: "How did we do?", rate_placeholder: "Anything to add? (optional)", rate_comment: "Comment (optional)", rate_send: "Send", rate_thanks: "Thank you for your rating!", rate_failed: "Couldn't send your rating ({why}). Try again.", rate_group: "Rating from 1 to 5", rate_1: "Very bad", rate_2: "Bad", rate_3: "OK", rate_4: "Good", rate_5: "Great",
    title: "Chat with us", placeholder: "Write a message…", close_chat: "Close chat", open_chat: "Open chat",
    messages: "Messages", message: "Message", send_message: "Send message",
    who_ai: "We reply in seconds. Ask for a person any time.", who_waiting: "A member of our team will reply here as soon as they can.",
    who_agent: "You're chatting with our team.", who_team: "Our team replies here as soon as they can.",
    away_ai: "We reply in seconds. Our team is back {back}.", away_team: "Our team is away and back {back}.",
    reconnecting: "Reconnecting…", offline: "You're offline. Retrying…", retry_in: "Retrying in {s} s.",
    still_trying: "Still trying.", not_live: "Can't receive replies live right now. {when} Your messages are still sent.",
    unreachable: "Can't reach the chat right now. We'll keep trying.", earlier: "Earlier messages",
    too_long: "Your message is {length} characters long; one message can have at most {limit}. Shorten it, or ",
    in_parts: "send it as {n} messages", support: "Support",
    form_title: "Leave your details", form_send: "Send my details", sending: "Sending…",
    form_thanks: "Thanks, we have your details.", form_moot: "This form is no longer needed: a member of our team is with you.",
    form_name: "Contact form", form_closed: "This form is closed.", one_is_enough: "{labels}: one is enough.",
    required: "{label} is required", at_most: "At most {n} characters", check: "Check the {label}",
    leave: "Leave {labels}", or: "or", check_fields: "Please check the highlighted fields.",
    bad_email: "Enter an email address like you@example.com", bad_url: "Enter a web address",
    form_gone: "This form is no longer needed: just keep chatting here.",
    chat_ended: "This chat has ended. Send a message to start a new one.",
    too_fast: "Sending too fast. Try again in {s} s.",
    form_failed: "Couldn't send your details. Check your connection and try again.",
    closed: "This conversation was closed.", start_new: "Send a message any time to start a new one.",
    new_conversation: "New conversation", image: "Image attachment",
    too_fast_retry: "Sending too fast, retrying in {s} s", not_sent: "Not sent.", not_sent_why: "Not sent: {why}",
    retry: "Retry",
  },
  es: {
    rate_title: "¿Qué tal lo hemos hecho?", rate_placeholder: "¿Algo que añadir? (opcional)", rate_comment: "Comentario (opcional)", rate_send: "Enviar", rate_thanks: "¡Gracias por tu valoración!", rate_failed: "No se pudo enviar tu valoración ({why}). Inténtalo de nuevo.", rate_group: "Valoración del 1 al 5", rate_1: "Muy mal", rate_2: "Mal", rate_3: "Regular", rate_4: "Bien", rate_5: "Genial",
    title: "Escríbenos", placeholder: "Escribe un mensaje…", close_chat: "Cerrar el chat", open_chat: "Abrir el chat",
    messages: "Mensajes", message: "Mensaje", send_message: "Enviar mensaje",
    who_ai: "Respondemos en segundos. Puedes pedir hablar con una persona cuando quieras.",
    who_waiting: "Enseguida te atiende una persona de nuestro equipo.",
    who_agent: "Estás hablando con nuestro equipo.", who_team: "Nuestro equipo te responde aquí en cuanto pueda.",
    away_ai: "Respondemos en segundos. Nuestro equipo vuelve {back}.", away_team: "Nuestro equipo no está y vuelve {back}.",
    reconnecting: "Reconectando…", offline: "Sin conexión. Reintentando…", retry_in: "Reintento en {s} s.",
    still_trying: "Seguimos intentándolo.",
    not_live: "Ahora no podemos mostrarte las respuestas al momento. {when} Tus mensajes se siguen enviando.",
    unreachable: "Ahora no podemos conectar con el chat. Seguimos intentándolo.", earlier: "Mensajes anteriores",
    too_long: "Tu mensaje tiene {length} caracteres; un mensaje puede tener como máximo {limit}. Acórtalo, o ",
    in_parts: "envíalo en {n} mensajes", support: "Soporte",
    form_title: "Déjanos tus datos", form_send: "Enviar mis datos", sending: "Enviando…",
    form_thanks: "Gracias, ya tenemos tus datos.",
    form_moot: "Este formulario ya no hace falta: una persona de nuestro equipo está contigo.",
    form_name: "Formulario de contacto", form_closed: "Este formulario está cerrado.",
    one_is_enough: "{labels}: basta con uno.", required: "{label} es obligatorio",
    at_most: "Como máximo {n} caracteres", check: "Revisa el campo {label}", leave: "Deja {labels}", or: "o",
    check_fields: "Revisa los campos marcados.", bad_email: "Escribe un correo como tu@ejemplo.com",
    bad_url: "Escribe una dirección web", form_gone: "Este formulario ya no hace falta: sigue escribiendo aquí.",
    chat_ended: "Este chat ha terminado. Envía un mensaje para empezar otro.",
    too_fast: "Demasiado rápido. Vuelve a intentarlo en {s} s.",
    form_failed: "No hemos podido enviar tus datos. Revisa tu conexión y vuelve a intentarlo.",
    closed: "Esta conversación se ha cerrado.", start_new: "Envía un mensaje cuando quieras para empezar otra.",
    new_conversation: "Nueva conversación", image: "Imagen adjunta",
    too_fast_retry: "Demasiado rápido, reintento en {s} s", not_sent: "No enviado.", not_sent_why: "No enviado: {why}",
    retry: "Reintentar",
  },
  fr: {
    rate_title: "Comment avons-nous été ?", rate_placeholder: "Quelque chose à ajouter ? (facultatif)", rate_comment: "Commentaire (facultatif)", rate_send: "Envoyer", rate_thanks: "Merci pour votre note !", rate_failed: "Impossible d'envoyer votre note ({why}). Réessayez.", rate_group: "Note de 1 à 5", rate_1: "Très mauvais", rate_2: "Mauvais", rate_3: "Correct", rate_4: "Bien", rate_5: "Excellent",
    title: "Discutons", placeholder: "Écrivez un message…", close_chat: "Fermer le chat", open_chat: "Ouvrir le chat",
    messages: "Messages", message: "Message", send_message: "Envoyer le message",
    who_ai: "Nous répondons en quelques secondes. Demandez un conseiller à tout moment.",
    who_waiting: "Un membre de notre équipe va vous répondre.",
    who_agent: "Vous discutez avec notre équipe.", who_team: "Notre équipe vous répond ici dès que possible.",
    away_ai: "Nous répondons en quelques secondes. Notre équipe revient {back}.",
    away_team: "Notre équipe est absente et revient {back}.",
    reconnecting: "Reconnexion…", offline: "Vous êtes hors ligne. Nouvel essai…", retry_in: "Nouvel essai dans {s} s.",
    still_trying: "Nous réessayons.",
    not_live: "Les réponses ne s'affichent pas en direct pour le moment. {when} Vos messages sont bien envoyés.",
    unreachable: "Le chat est injoignable pour le moment. Nous réessayons.", earlier: "Messages précédents",
    too_long: "Votre message fait {length} caractères ; un message peut en avoir au plus {limit}. Raccourcissez-le, ou ",
    in_parts: "envoyez-le en {n} messages", support: "Assistance",
    form_title: "Laissez vos coordonnées", form_send: "Envoyer mes coordonnées", sending: "Envoi…",
    form_thanks: "Merci, nous avons vos coordonnées.",
    form_moot: "Ce formulaire n'est plus nécessaire : un membre de notre équipe est avec vous.",
    form_name: "Formulaire de contact", form_closed: "Ce formulaire est fermé.",
    one_is_enough: "{labels} : un seul suffit.", required: "{label} est obligatoire",
    at_most: "{n} caractères au plus", check: "Vérifiez le champ {label}", leave: "Indiquez {labels}", or: "ou",
    check_fields: "Vérifiez les champs signalés.", bad_email: "Saisissez une adresse e-mail comme vous@exemple.fr",
    bad_url: "Saisissez une adresse web", form_gone: "Ce formulaire n'est plus nécessaire : continuez la discussion ici.",
    chat_ended: "Cette discussion est terminée. Envoyez un message pour en commencer une autre.",
    too_fast: "Trop rapide. Réessayez dans {s} s.",
    form_failed: "Impossible d'envoyer vos coordonnées. Vérifiez votre connexion et réessayez.",
    closed: "Cette conversation a été fermée.", start_new: "Envoyez un message à tout moment pour en commencer une autre.",
    new_conversation: "Nouvelle conversation", image: "Image jointe",
    too_fast_retry: "Trop rapide, nouvel essai dans {s} s", not_sent: "Non envoyé.", not_sent_why: "Non envoyé : {why}",
    retry: "Réessayer",
  },
  de: {
    rate_title: "Wie waren wir?", rate_placeholder: "Noch etwas hinzuzufügen? (optional)", rate_comment: "Kommentar (optional)", rate_send: "Senden", rate_thanks: "Danke für Ihre Bewertung!", rate_failed: "Ihre Bewertung konnte nicht gesendet werden ({why}). Bitte erneut versuchen.", rate_group: "Bewertung von 1 bis 5", rate_1: "Sehr schlecht", rate_2: "Schlecht", rate_3: "Okay", rate_4: "Gut", rate_5: "Sehr gut",
    title: "Schreiben Sie uns", placeholder: "Nachricht schreiben…", close_chat: "Chat schließen",
    open_chat: "Chat öffnen", messages: "Nachrichten", message: "Nachricht", send_message: "Nachricht senden",
    who_ai: "Wir antworten in Sekunden. Sie können jederzeit nach einem Menschen fragen.",
    who_waiting: "Gleich ist jemand aus unserem Team für Sie da.",
    who_agent: "Sie schreiben mit unserem Team.", who_team: "Unser Team antwortet hier, sobald es kann.",
    away_ai: "Wir antworten in Sekunden. Unser Team ist wieder da {back}.",
    away_team: "Unser Team ist nicht da und wieder erreichbar {back}.",
    reconnecting: "Verbindung wird wiederhergestellt…", offline: "Sie sind offline. Neuer Versuch…",
    retry_in: "Neuer Versuch in {s} s.", still_trying: "Wir versuchen es weiter.",
    not_live: "Antworten kommen gerade nicht live an. {when} Ihre Nachrichten werden trotzdem gesendet.",
    unreachable: "Der Chat ist gerade nicht erreichbar. Wir versuchen es weiter.", earlier: "Frühere Nachrichten",
    too_long: "Ihre Nachricht hat {length} Zeichen; eine Nachricht darf höchstens {limit} haben. Kürzen Sie sie, oder ",
    in_parts: "senden Sie sie als {n} Nachrichten", support: "Support",
    form_title: "Hinterlassen Sie Ihre Kontaktdaten", form_send: "Meine Daten senden", sending: "Wird gesendet…",
    form_thanks: "Danke, wir haben Ihre Kontaktdaten.",
    form_moot: "Dieses Formular wird nicht mehr gebraucht: Jemand aus unserem Team ist für Sie da.",
    form_name: "Kontaktformular", form_closed: "Dieses Formular ist geschlossen.",
    one_is_enough: "{labels}: eines genügt.", required: "{label} ist erforderlich", at_most: "Höchstens {n} Zeichen",
    check: "Prüfen Sie das Feld {label}", leave: "Geben Sie {labels} an", or: "oder",
    check_fields: "Bitte prüfen Sie die markierten Felder.", bad_email: "Geben Sie eine E-Mail-Adresse wie sie@beispiel.de ein",
    bad_url: "Geben Sie eine Webadresse ein", form_gone: "Dieses Formular wird nicht mehr gebraucht: Schreiben Sie einfach hier weiter.",
    chat_ended: "Dieser Chat ist beendet. Schreiben Sie eine Nachricht, um einen neuen zu beginnen.",
    too_fast: "Zu schnell. Versuchen Sie es in {s} s erneut.",
    form_failed: "Ihre Daten konnten nicht gesendet werden. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
    closed: "Dieses Gespräch wurde beendet.", start_new: "Schreiben Sie jederzeit, um ein neues zu beginnen.",
    new_conversation: "Neues Gespräch", image: "Bildanhang",
    too_fast_retry: "Zu schnell, neuer Versuch in {s} s", not_sent: "Nicht gesendet.",
    not_sent_why: "Nicht gesendet: {why}", retry: "Erneut senden",
  },
  pt: {
    rate_title: "Como nos saímos?", rate_placeholder: "Algo a acrescentar? (opcional)", rate_comment: "Comentário (opcional)", rate_send: "Enviar", rate_thanks: "Obrigado pela sua avaliação!", rate_failed: "Não foi possível enviar sua avaliação ({why}). Tente novamente.", rate_group: "Avaliação de 1 a 5", rate_1: "Muito ruim", rate_2: "Ruim", rate_3: "Ok", rate_4: "Bom", rate_5: "Ótimo",
    title: "Fale conosco", placeholder: "Escreva uma mensagem…", close_chat: "Fechar o chat", open_chat: "Abrir o chat",
    messages: "Mensagens", message: "Mensagem", send_message: "Enviar mensagem",
    who_ai: "Respondemos em segundos. Peça para falar com uma pessoa quando quiser.",
    who_waiting: "Uma pessoa da nossa equipe já vai atender você.",
    who_agent: "Você está falando com a nossa equipe.", who_team: "Nossa equipe responde aqui assim que puder.",
    away_ai: "Respondemos em segundos. Nossa equipe volta {back}.", away_team: "Nossa equipe está ausente e volta {back}.",
    reconnecting: "Reconectando…", offline: "Você está offline. Tentando de novo…", retry_in: "Nova tentativa em {s} s.",
    still_trying: "Continuamos tentando.",
    not_live: "Não é possível receber respostas ao vivo agora. {when} Suas mensagens continuam sendo enviadas.",
    unreachable: "Não é possível acessar o chat agora. Continuamos tentando.", earlier: "Mensagens anteriores",
    too_long: "Sua mensagem tem {length} caracteres; uma mensagem pode ter no máximo {limit}. Encurte-a, ou ",
    in_parts: "envie-a em {n} mensagens", support: "Suporte",
    form_title: "Deixe seus dados", form_send: "Enviar meus dados", sending: "Enviando…",
    form_thanks: "Obrigado, já temos seus dados.",
    form_moot: "Este formulário não é mais necessário: uma pessoa da nossa equipe está com você.",
    form_name: "Formulário de contato", form_closed: "Este formulário está fechado.",
    one_is_enough: "{labels}: basta um.", required: "{label} é obrigatório", at_most: "No máximo {n} caracteres",
    check: "Verifique o campo {label}", leave: "Informe {labels}", or: "ou",
    check_fields: "Verifique os campos destacados.", bad_email: "Digite um e-mail como voce@exemplo.com",
    bad_url: "Digite um endereço web", form_gone: "Este formulário não é mais necessário: continue conversando aqui.",
    chat_ended: "Este chat terminou. Envie uma mensagem para começar outro.",
    too_fast: "Rápido demais. Tente de novo em {s} s.",
    form_failed: "Não foi possível enviar seus dados. Verifique sua conexão e tente de novo.",
    closed: "Esta conversa foi encerrada.", start_new: "Envie uma mensagem quando quiser para começar outra.",
    new_conversation: "Nova conversa", image: "Imagem anexada",
    too_fast_retry: "Rápido demais, nova tentativa em {s} s", not_sent: "Não enviada.",
    not_sent_why: "Não enviada: {why}", retry: "Tentar de novo",
  },
  it: {
    rate_title: "Come siamo andati?", rate_placeholder: "Qualcosa da aggiungere? (facoltativo)", rate_comment: "Commento (facoltativo)", rate_send: "Invia", rate_thanks: "Grazie per la tua valutazione!", rate_failed: "Impossibile inviare la tua valutazione ({why}). Riprova.", rate_group: "Valutazione da 1 a 5", rate_1: "Molto male", rate_2: "Male", rate_3: "Così così", rate_4: "Bene", rate_5: "Ottimo",
    title: "Scrivici", placeholder: "Scrivi un messaggio…", close_chat: "Chiudi la chat", open_chat: "Apri la chat",
    messages: "Messaggi", message: "Messaggio", send_message: "Invia messaggio",
    who_ai: "Rispondiamo in pochi secondi. Puoi chiedere una persona in qualsiasi momento.",
    who_waiting: "Una persona del nostro team sarà da te a breve.",
    who_agent: "Stai parlando con il nostro team.", who_team: "Il nostro team ti risponde qui appena può.",
    away_ai: "Rispondiamo in pochi secondi. Il nostro team torna {back}.",
    away_team: "Il nostro team non è disponibile e torna {back}.",
    reconnecting: "Riconnessione…", offline: "Sei offline. Nuovo tentativo…", retry_in: "Nuovo tentativo tra {s} s.",
    still_trying: "Stiamo ancora provando.",
    not_live: "Ora non riceviamo le risposte in tempo reale. {when} I tuoi messaggi vengono comunque inviati.",
    unreachable: "Ora la chat non è raggiungibile. Continuiamo a provare.", earlier: "Messaggi precedenti",
    too_long: "Il tuo messaggio ha {length} caratteri; un messaggio può averne al massimo {limit}. Accorcialo, oppure ",
    in_parts: "invialo in {n} messaggi", support: "Assistenza",
    form_title: "Lasciaci i tuoi recapiti", form_send: "Invia i miei recapiti", sending: "Invio…",
    form_thanks: "Grazie, abbiamo i tuoi recapiti.",
    form_moot: "Questo modulo non serve più: una persona del nostro team è con te.",
    form_name: "Modulo di contatto", form_closed: "Questo modulo è chiuso.",
    one_is_enough: "{labels}: ne basta uno.", required: "{label} è obbligatorio", at_most: "Al massimo {n} caratteri",
    check: "Controlla il campo {label}", leave: "Lascia {labels}", or: "o",
    check_fields: "Controlla i campi evidenziati.", bad_email: "Inserisci un indirizzo email come tu@esempio.it",
    bad_url: "Inserisci un indirizzo web", form_gone: "Questo modulo non serve più: continua a scrivere qui.",
    chat_ended: "Questa chat è terminata. Invia un messaggio per iniziarne una nuova.",
    too_fast: "Troppo veloce. Riprova tra {s} s.",
    form_failed: "Non è stato possibile inviare i tuoi recapiti. Controlla la connessione e riprova.",
    closed: "Questa conversazione è stata chiusa.", start_new: "Invia un messaggio quando vuoi per iniziarne una nuova.",
    new_conversation: "Nuova conversazione", image: "Immagine allegata",
    too_fast_retry: "Troppo veloce, nuovo tentativo tra {s} s", not_sent: "Non inviato.",
    not_sent_why: "Non inviato: {why}", retry: "Riprova",
  },
};

export const LANGUAGES = Object.keys(WORDS);
let current = "en";

/** Speak `language` from now on (one of LANGUAGES; anything else is ignored). Whether it changed. */
export function setLanguage(language) {
  if (!WORDS[language] || language === current) return false;
  current = language;
  return true;
}

export function language() {
  return current;
}

/** The widget's words for `key`, in the current language, with {placeholders} filled. */
export function t(key, values = {}) {
  const text = WORDS[current][key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** A number as the current language writes it (10,422 · 10.422 · 10 422). */
export function number(value) {
  return Number(value).toLocaleString(current);
}

/** For tests: every language has every key. */
export function missing() {
  return LANGUAGES.flatMap((lang) => Object.keys(WORDS.en).filter((key) => !(key in WORDS[lang])).map((k) => `${lang}.${k}`));
}
