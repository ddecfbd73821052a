// The chat with one channel: its settings, the visitor's session, the live conversation and sending.
//
// Nothing is created on the server until the visitor sends something: opening the panel reads only the
// channel's public settings (title, greeting, the AI agent's name, limits), so a fresh visitor sees the
// channel's own greeting at once. A 401 means the session expired or was revoked: it is dropped, and the
// next message starts a new one without the visitor noticing.

import { fill, h } from "../inbox/dom.js";
import { SharedStream } from "../inbox/shared.js";
import { RequestFailed, VisitorApi } from "./api.js";
import { formFields, renderForm, retireForm } from "./form.js";
import { renderRating } from "./rating.js";
import { greeting, newConversationDivider, renderMessage, renderNotice } from "./messages.js";
import { number, setLanguage, t } from "./i18n.js";
import { Outbox } from "./outbox.js";
import { storage } from "./storage.js";
import { splitText, textLength } from "./split.js";
import { buildView, relabel, resizeInput, scrollDown, scrollToTop, showConnection } from "./view.js";

// The header's promise, by who answers: the AI at once, a person the visitor waits for, a person who is here; a
// visitor without an open conversation hears who would answer a new one (the channel's `replies`).
const WHO_REPLIES = { ai: "who_ai", waiting: "who_waiting", agent: "who_agent", team: "who_team" }; // i18n.js

/** Where a message stands in the visitor's history: conversations by number, then messages by their place in the
 * conversation, the id's second part ("<ms>-<place>": the ms may go back, the place never; store.place). No
 * message (""): before the conversation's first. */
function position(conversation, id) {
  const place = Number(String(id || "").split("-")[1]);
  return [Number(conversation) || 0, Number.isInteger(place) ? place : -1];
}

/** Whether `at` is not older than `than` (null: nothing known yet). */
function notOlder(at, than) {
  if (!than) return true;
  for (let i = 0; i < at.length; i += 1) if (at[i] !== than[i]) return at[i] > than[i];
  return true;
}

const TYPING_MAX_MS = 45000; // the dots' longest wait: the AI answers or hands over within its timeout plus 10 s

export class Chat {
  constructor(origin, channel) {
    this.origin = origin;
    this.api = new VisitorApi(origin, channel);
    const key = `baton.webchat.${channel}@${origin}`;
    this.saved = storage(key);
    this.tab = storage(key, "sessionStorage");
    this.view = buildView(origin, channel);
    this.config = null;
    this.configLoading = null;
    this.session = this.saved.get("session", null); // {token, visitor}
    this.creating = null;
    this.historyLoading = null;
    this.earlier = { conversation: null, before: null, node: null }; // the page before the oldest shown
    this.unreachable = false;
    this.stream = null;
    this.seen = new Set(); // "<conversation>/<message>" already shown
    this.conversation = null;
    this.activeForm = null;
    this.formPending = false;
    this.textLimit = 0; // characters of one message the server takes (its /config's limits.text)
    this.party = ""; // who the open conversation is with: ai, waiting, agent ("" or closed: none is open)
    // As of which message the party (and the form's state) is known: an answer covering only older messages, such
    // as a history asked for before a live handover and answered after it, is older news and changes neither.
    this.partyAt = null;
    this.language = ""; // the conversation's, as the server read it ("": the workspace's, from /config)
    this.isOpen = false;
    this.unread = 0;
    this.lastReplyAuthor = "";
    this.typingTimer = 0;
    this.replies = 0; // messages received from the team (the AI, a person, a notice): the dots wait for the next one
    this.outbox = new Outbox({
      send: async (item) => {
        await this.ensureSession();
        const replies = this.replies;
        const result = await this.call(() => this.api.send(item.text, item.client_id));
        // The answer can come on the event stream before the POST's own response: then nobody is typing any more.
        if (this.replies === replies) this.showTyping();
        return result;
      },
      renew: () => this.ensureSession(),
      acknowledged: (item, conversation, id) => this.acknowledge(item, conversation, id),
      place: (node) => {
        this.view.log.insertBefore(node, this.view.typing);
        scrollDown(this.view);
      },
      saved: this.saved,
    });
    this.bind();
  }

  // --- the channel's settings ------------------------------------------------------------------

  loadConfig() {
    if (this.config) return Promise.resolve(this.config);
    if (!this.configLoading) {
      this.configLoading = this.api.config().then((config) => {
        this.applyConfig(config);
        return config;
      }).finally(() => { this.configLoading = null; });
    }
    return this.configLoading;
  }

  applyConfig(config) {
    this.config = config;
    this.speak(this.language || config.language);
    this.view.title.textContent = config.title || t("title");
    // No maxlength: it would cut a long paste without a word. checkLength says so and offers to send it in parts.
    this.textLimit = (config.limits && config.limits.text) || 0;
    const { log } = this.view;
    if (config.greeting && !log.querySelector(".bw-greeting")) log.insertBefore(greeting(config.greeting), log.firstChild);
    this.showParty(this.party);
  }

  /** Speak the server's language: the conversation's once it has read the customer's, else the workspace's. */
  speak(language) {
    if (!language) return;
    this.language = language;
    if (!setLanguage(language)) return;
    relabel(this.view, this.config && this.config.title, this.isOpen);
    if (this.config) this.showParty(this.party);
  }

  /** Say in the header who answers now; a contact form is moot once someone has the chat. */
  showParty(party) {
    this.party = party || "";
    const open = this.party && this.party !== "closed";
    const replies = (this.config && this.config.replies) || "ai";
    // Outside business hours: when the team is back, in the language spoken (the workspace's as a fallback).
    const away = this.config && ((this.config.team_back_in || {})[this.language] || this.config.team_back);
    const who = open ? this.party : replies;
    this.view.sub.textContent = away && who !== "agent"
      ? t(who === "ai" ? "away_ai" : "away_team", { back: away })
      : t(WHO_REPLIES[who] || WHO_REPLIES.ai);
    if (open && this.party !== "waiting" && this.activeForm) this.retireForm();
  }

  /** Show who has the chat as known at `at`, unless newer news of it came already; says whether it was shown. */
  learnParty(party, at) {
    if (!notOlder(at, this.partyAt)) return false;
    this.partyAt = at;
    this.showParty(party);
    return true;
  }

  names() {
    const ai = (this.config && this.config.ai_name) || "AI agent";
    return { ai: (message) => message.agent_name || ai, agent: (message) => message.agent_name || t("support") };
  }

  // --- the session -----------------------------------------------------------------------------

  async ensureSession() {
    if (this.session) return this.session;
    if (!this.creating) {
      this.api.token = "";
      this.creating = this.api.createSession().then((data) => {
        this.useSession({ token: data.token, visitor: data.visitor });
        if (!this.config) this.applyConfig(data);
        return this.session;
      }).finally(() => { this.creating = null; });
    }
    return this.creating;
  }

  useSession(session) {
    this.session = session;
    this.saved.set("session", session);
    this.api.token = session.token;
    this.connect();
  }

  /** The server no longer knows the session of this token: forget it (unless a newer one replaced it
   * meanwhile); the next message starts a new one. */
  expire(token) {
    if (!this.session || this.session.token !== token) return;
    this.session = null;
    this.saved.set("session", null);
    this.api.token = "";
    this.partyAt = null; // the next session's conversation is another's: nothing of this one's order holds
    if (this.stream) this.stream.close();
    this.stream = null;
    showConnection(this.view, "");
  }

  /** A visitor call: a 401 expires the session it was made with, then the error goes on to the caller. */
  async call(request) {
    const token = this.api.token;
    try {
      return await request();
    } catch (error) {
      if (error.status === 401) this.expire(token);
      throw error;
    }
  }

  // --- receiving -------------------------------------------------------------------------------

  /** The visitor's event stream, one for all the browser's tabs with this chat (shared.js). */
  connect() {
    if (this.stream) this.stream.close();
    const { token, visitor } = this.session;
    this.stream = new SharedStream(`webchat:${this.api.base}:${visitor}`, this.api.eventsUrl, {
      headers: () => this.api.authorization(),
      onOpen: () => {
        showConnection(this.view, "");
        this.loadHistory();
      },
      onEvent: (frame) => {
        if (frame.event !== "message") return;
        let data;
        try {
          data = JSON.parse(frame.data);
        } catch {
          return;
        }
        this.receive(data.conversation, data);
      },
      onStatus: (status, detail) => {
        if (status === "live") showConnection(this.view, "");
        else if (status === "reconnecting") showConnection(this.view, t("reconnecting"));
        else if (status === "offline") showConnection(this.view, t("offline"));
        else if (status === "error") {
          const when = detail && detail.retryIn ? t("retry_in", { s: detail.retryIn }) : t("still_trying");
          showConnection(this.view, t("not_live", { when }));
          // Replies come with the conversation's history meanwhile, read at each failed attempt.
          if (detail && detail.retryIn) this.loadHistory();
        }
      },
      onRejected: () => this.expire(token),
    });
    this.stream.start();
  }

  /** The conversation so far, after a (re)connection; one request at a time. */
  loadHistory() {
    if (!this.historyLoading) this.historyLoading = this.readHistory().finally(() => { this.historyLoading = null; });
    return this.historyLoading;
  }

  async readHistory() {
    if (!this.session) return;
    try {
      const data = await this.call(() => this.api.history());
      if (!data.conversation) return;
      this.speak(data.conversation.language);
      for (const message of data.messages) this.receive(data.conversation.id, message);
      const newest = data.messages[data.messages.length - 1];
      if (newest && this.stream) this.stream.saw(`${data.conversation.id}/${newest.id}`);
      // Its party and form state are as of its newest message: a live event after that one told newer.
      if (this.learnParty(data.conversation.with, position(data.conversation.id, newest && newest.id))) {
        if (!data.conversation.form_pending && this.activeForm) this.retireForm();
      }
      if (this.earlier.conversation !== data.conversation.id) {
        this.offerEarlier(data.conversation.id, data.has_more ? data.next_before : null);
      }
      this.unread = 0;
      this.showUnread();
    } catch (error) {
      if (!(error instanceof RequestFailed)) throw error;
      // Not reachable now: the stream's next (re)connection loads it again.
    }
  }

  /** A long conversation shows its newest messages; the visitor asks for the earlier ones a page at a time. */
  offerEarlier(conversation, before) {
    this.earlier.conversation = conversation;
    this.earlier.before = before;
    if (!before) {
      if (this.earlier.node) this.earlier.node.remove();
      this.earlier.node = null;
      return;
    }
    if (this.earlier.node) return;
    const button = h("button", { class: "bw-earlier-button", type: "button", onclick: () => this.loadEarlier(button) },
      t("earlier"));
    this.earlier.node = h("li", { class: "bw-earlier" }, button);
    const { log } = this.view;
    const first = log.querySelector(".bw-greeting");
    log.insertBefore(this.earlier.node, first ? first.nextSibling : log.firstChild);
  }

  async loadEarlier(button) {
    const { conversation, before } = this.earlier;
    button.disabled = true;
    try {
      const data = await this.call(() => this.api.history(before));
      if (!data.conversation || data.conversation.id !== conversation || !this.earlier.node) return;
      const anchor = this.earlier.node.nextSibling;
      for (const message of data.messages) {
        const key = `${conversation}/${message.id}`;
        if (this.seen.has(key)) continue;
        this.seen.add(key);
        // What came before is history: a contact form in it is shown as its text, never as a live form.
        const node = message.author === "system" ? renderNotice(message)
          : renderMessage(message, this.names(), this.origin);
        this.view.log.insertBefore(node, anchor);
      }
      this.offerEarlier(conversation, data.has_more ? data.next_before : null);
    } catch (error) {
      if (!(error instanceof RequestFailed)) throw error;
    } finally {
      button.disabled = false;
    }
  }

  receive(conversation, message) {
    const key = `${conversation}/${message.id}`;
    // A message says who had the chat when it was written; even one shown already (the visitor's own, acknowledged
    // by the POST's answer before its event came) may be the newest news of it.
    if (message.with) this.learnParty(message.with, position(conversation, message.id));
    if (this.seen.has(key)) return;
    if (message.author === "customer") {
      const item = this.outbox.claim(message.text);
      if (item) {
        this.acknowledge(item, conversation, message.id);
        return;
      }
    }
    this.seen.add(key);
    this.follow(conversation);
    const node = this.render(message);
    this.place(node);
    if (message.kind === "closed") {
      this.retireForm();
      this.offerRating(conversation);
    }
    if (message.author !== "customer") {
      this.replies += 1;
      if (message.author !== "system") this.lastReplyAuthor = message.author;
      this.hideTyping();
      if (!this.isOpen) {
        this.unread += 1;
        this.showUnread();
      }
    }
    if (message.kind === "contact_form") scrollToTop(this.view, node);
    else scrollDown(this.view);
  }

  render(message) {
    if (message.author !== "system") return renderMessage(message, this.names(), this.origin);
    if (message.kind !== "contact_form") return renderNotice(message);
    this.formPending = true;
    this.speak(message.rich && message.rich.language); // the form comes in the conversation's language
    const item = renderForm(message, {
      fields: formFields(message, this.config && this.config.contact_form),
      oneOf: (this.config && this.config.contact_form && this.config.contact_form.require_one_of) || [],
      live: () => this.formPending && item === this.activeForm,
      submit: async (values) => {
        await this.call(() => this.api.contact(values));
        this.formPending = false;
        this.activeForm = null;
      },
    });
    this.activeForm = item;
    return item;
  }

  /** A message of a conversation other than the one shown: the visitor sees where the new one starts. */
  follow(conversation) {
    if (this.conversation && conversation !== this.conversation) this.place(newConversationDivider());
    this.conversation = conversation;
  }

  /** The message being sent is recorded: its bubble stays where it is, or goes if history shows it. */
  acknowledge(item, conversation, id) {
    this.outbox.done(item, id);
    const key = `${conversation}/${id}`;
    if (this.seen.has(key)) {
      item.node.remove();
      return;
    }
    this.seen.add(key);
    this.follow(conversation);
    item.node.dataset.id = id;
    item.node.classList.remove("bw-pending", "bw-failed");
    this.outbox.status(item, "");
    this.place(item.node);
    scrollDown(this.view);
  }

  /** Before the first message still being sent: what the server has comes before what it has yet to get. */
  place(node) {
    const pending = this.outbox.items.find((item) => item.node.isConnected && item.node !== node);
    this.view.log.insertBefore(node, pending ? pending.node : this.view.typing);
  }

  /** Ask for a rating of the conversation that just closed (unless this browser rated it already). */
  offerRating(conversation) {
    if (this.ratingCard) this.ratingCard.remove();
    this.ratingCard = null;
    const rated = this.saved.get("rated", []);
    if (!this.config || this.config.csat === false || rated.includes(conversation)) return;
    this.ratingCard = renderRating(async (rating, comment) => {
      await this.call(() => this.api.rate(rating, comment));
      this.saved.set("rated", [...this.saved.get("rated", []), conversation].slice(-20));
    });
    this.place(this.ratingCard);
  }

  retireForm() {
    this.formPending = false;
    const item = this.activeForm;
    this.activeForm = null;
    if (item && item.isConnected) retireForm(item);
  }

  // --- the panel -------------------------------------------------------------------------------

  /** The AI is working on an answer: dots until a message from the team arrives (or TYPING_MAX_MS passes). */
  showTyping() {
    const open = this.party && this.party !== "closed";
    const answerer = open ? this.party : (this.config && this.config.replies) || "ai";
    if (this.lastReplyAuthor === "agent" || answerer !== "ai") return;
    this.view.typing.hidden = false;
    scrollDown(this.view);
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.hideTyping(), TYPING_MAX_MS);
  }

  hideTyping() {
    clearTimeout(this.typingTimer);
    this.view.typing.hidden = true;
  }

  showUnread() {
    this.view.badge.hidden = this.unread === 0 || this.isOpen;
    this.view.badge.textContent = String(Math.min(this.unread, 9));
  }

  open(focus = true) {
    const { view } = this;
    this.isOpen = true;
    this.tab.set("open", true);
    view.panel.hidden = false;
    view.root.classList.add("bw-is-open");
    view.launcher.setAttribute("aria-expanded", "true");
    view.launcher.setAttribute("aria-label", t("close_chat"));
    this.unread = 0;
    this.showUnread();
    scrollDown(view);
    if (focus) view.input.focus();
    this.loadConfig().then(() => {
      if (this.unreachable) showConnection(view, "");
      this.unreachable = false;
    }, () => {
      this.unreachable = true;
      showConnection(view, t("unreachable"));
    });
  }

  close() {
    const { view } = this;
    this.isOpen = false;
    this.tab.set("open", null);
    view.panel.hidden = true;
    view.root.classList.remove("bw-is-open");
    view.launcher.setAttribute("aria-expanded", "false");
    view.launcher.setAttribute("aria-label", t("open_chat"));
    view.launcher.focus();
  }

  submit() {
    const text = this.view.input.value.trim();
    if (!text || !this.checkLength()) return;
    if (this.ratingCard && !this.ratingCard.classList.contains("bw-rated")) this.ratingCard.remove();
    this.ratingCard = null;
    this.view.input.value = "";
    resizeInput(this.view);
    this.outbox.add(text);
  }

  /** A message longer than the server takes is never cut: the visitor is told, and may send it in parts. */
  checkLength() {
    const { input, lengthNote } = this.view;
    const text = input.value.trim();
    const length = textLength(text);
    if (!this.textLimit || length <= this.textLimit) {
      lengthNote.hidden = true;
      return true;
    }
    const parts = splitText(text, this.textLimit);
    fill(lengthNote, t("too_long", { length: number(length), limit: number(this.textLimit) }),
      h("button", { class: "bw-length-send", type: "button", onclick: () => this.sendInParts() },
        t("in_parts", { n: parts.length })), ".");
    lengthNote.hidden = false;
    return false;
  }

  sendInParts() {
    const parts = splitText(this.view.input.value.trim(), this.textLimit);
    this.view.input.value = "";
    this.view.lengthNote.hidden = true;
    resizeInput(this.view);
    for (const part of parts) this.outbox.add(part);
    this.view.input.focus();
  }

  bind() {
    const { view } = this;
    view.launcher.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    view.closeButton.addEventListener("click", () => this.close());
    view.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    view.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    view.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    view.input.addEventListener("input", () => {
      resizeInput(view);
      if (!view.lengthNote.hidden || textLength(view.input.value) > this.textLimit) this.checkLength();
    });
    window.addEventListener("online", () => {
      if (this.outbox.hasFailed) this.outbox.retry();
    });
  }

  async mount() {
    document.body.appendChild(this.view.host);
    if (this.tab.get("open", false)) this.open(false);
    // The names of the team's messages come with the settings: read them before any message is drawn.
    await this.loadConfig().catch(() => {});
    if (this.session) {
      this.api.token = this.session.token;
      this.connect();
      await this.loadHistory();
    }
    // Messages typed before a reload and never acknowledged: sent again under their own client_id.
    for (const unsent of this.outbox.stored) this.outbox.add(unsent.text, unsent.client_id);
  }
}
