// The conversation pane: header, the actions possible in the current state, the history and the composer.

import { api, newClientId } from "./api.js";
import { ago, avatar, fill, h, icon, waited } from "./dom.js";
import {
  agentName, aiName, channelType, contactId, customerName, identityLabel, isMine, ownerLabel, store,
} from "./store.js";
import { Timeline } from "./timeline.js";
import { splitText, textLength } from "../widget/split.js";
import { bindCannedMenu, renderConversationLabels, renderSnooze } from "./toolbox.js";

// What one reply or note may be, and one message on the channel, until the conversation's own limits are loaded.
const DEFAULT_LIMITS = { text: 4096, channel: 4096 };

const $ = (id) => document.getElementById(id);
const UNDELIVERED = new Set(["unknown", "failed", "undelivered"]);

/** What the signed-in agent can do with a conversation right now. */
export function possible(conversation) {
  const open = conversation.status === "open";
  const owner = conversation.owner || "";
  const mine = isMine(owner);
  const other = owner.startsWith("agent:") && !mine;
  const published = Boolean(store.ai && store.ai.published);
  return {
    assignMe: open && !mine && (!other || store.me.admin),
    force: other,
    unassign: open && (owner === "ai" || mine),
    handBack: open && !other && owner !== "ai",
    handBackBlocked: !published,
    assignTo: open && !other,
    close: open && !other,
    reopen: !open,
    reply: open && !other,
  };
}

/** An admin is about to take over a colleague's chat: yes or no, in a modal dialog (Escape says no). */
export function confirmTakeover(owner) {
  const dialog = $("takeover-dialog");
  $("takeover-text").textContent = `${owner} has this chat. If you take it over, they can no longer reply in it `
    + "and are told it is yours now.";
  dialog.returnValue = "";
  dialog.showModal();
  $("takeover-confirm").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

export class ConversationPane {
  constructor({ onError, onChanged }) {
    this.onError = onError;
    this.onChanged = onChanged;
    this.conversation = null;
    this.loading = 0;
    bindCannedMenu($("composer-text"), () => this.conversation); // before the composer's Enter sends
    this.timeline = new Timeline($("timeline"), {
      ownerLabel, agentName, aiName,
      customerName: () => (this.conversation ? customerName(this.conversation) : "Customer"),
      customerSeed: () => (this.conversation ? contactId(this.conversation) || this.conversation.id : "customer"),
      resend: (messageId) => this.resend(messageId),
    });
    $("act-assign-me").addEventListener("click", async () => {
      const can = possible(this.conversation);
      // Taking a colleague's chat (an admin may) is asked first: they are in the middle of it, and are told.
      if (can.force && !(await confirmTakeover(ownerLabel(this.conversation.owner)))) return;
      this.act(() => api.assign(this.id, "me", can.force));
    });
    $("act-unassign").addEventListener("click", () => this.act(() => api.unassign(this.id)));
    $("act-hand-back").addEventListener("click", () => this.act(() => api.assign(this.id, "ai")));
    $("act-close").addEventListener("click", () => this.act(() => api.close(this.id)));
    $("act-reopen").addEventListener("click", () => this.act(() => api.reopen(this.id)));
    this.noting = false;
    $("mode-reply").addEventListener("click", () => this.setMode(false));
    $("mode-note").addEventListener("click", () => this.setMode(true));
    $("act-assign-to").addEventListener("change", (event) => {
      const agent = event.target.value;
      event.target.value = "";
      if (agent) this.act(() => api.assign(this.id, agent));
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    $("composer-text").addEventListener("input", () => this.checkLength());
    $("composer-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
  }

  get id() {
    return this.conversation && this.conversation.id;
  }

  async open(id, messageId = null) {
    if (id === store.openId && this.conversation) {
      await this.refresh();
      if (messageId) await this.focus(messageId);
      return undefined;
    }
    store.openId = id;
    this.conversation = null;
    this.earlierBefore = null;
    this.timeline.reset();
    $("conversation-empty").hidden = Boolean(id);
    $("conversation-body").hidden = !id;
    $("details").hidden = !id;
    // Until this conversation has loaded, its actions have nothing to act on: hidden, they cannot be clicked for
    // the previous one (or for none, a POST to /api/conversations/null/…).
    document.querySelector(".actions").hidden = true;
    // Nor can anything be written to it: Enter would do nothing, silently (send() needs the conversation).
    $("composer-text").disabled = true;
    $("composer-send").disabled = true;
    $("composer-text").value = "";
    if (id) await this.refresh();
    if (id && messageId) await this.focus(messageId);
    return undefined;
  }

  /** Show a message (a search's match): earlier pages are read until it is among those shown, then it is
   * scrolled to and marked. */
  async focus(messageId) {
    const id = store.openId;
    for (let pages = 0; pages < 50 && !this.timeline.seen.has(messageId) && this.earlierBefore; pages += 1) {
      await this.loadEarlier();
      if (id !== store.openId) return;
    }
    const node = [...$("timeline").querySelectorAll("[data-id]")].find((el) => el.dataset.id === messageId);
    if (!node) return;
    for (const old of $("timeline").querySelectorAll(".is-match")) old.classList.remove("is-match");
    node.classList.add("is-match");
    node.scrollIntoView({ block: "center" });
  }

  async refresh() {
    const id = store.openId;
    if (!id) return;
    const ticket = ++this.loading;
    try {
      const { conversation } = await api.conversation(id);
      const first = !this.timeline.shown.length;
      // More new messages than one page since the last look: page back until they meet those shown.
      let before = conversation.next_before;
      for (let pages = 0; !first && before && pages < 20; pages += 1) {
        if (conversation.messages.some((m) => this.timeline.seen.has(m.id))) break;
        const page = await api.messages(id, before);
        conversation.messages = [...page.messages, ...conversation.messages];
        before = page.next_before;
      }
      if (ticket !== this.loading || id !== store.openId) return;
      if (first) this.earlierBefore = conversation.has_more ? conversation.next_before : null;
      this.conversation = conversation;
      this.render();
    } catch (error) {
      if (id === store.openId) this.onError(error);
    }
  }

  /** The page before the oldest message shown. */
  async loadEarlier() {
    const id = this.id;
    if (!id || !this.earlierBefore) return;
    try {
      const page = await api.messages(id, this.earlierBefore);
      if (id !== store.openId) return;
      this.earlierBefore = page.has_more ? page.next_before : null;
      this.timeline.showEarlier(page.messages);
      this.timeline.offerEarlier(this.earlierBefore ? () => this.loadEarlier() : null);
    } catch (error) {
      this.onError(error);
    }
  }

  render() {
    const c = this.conversation;
    const name = customerName(c);
    $("conv-avatar").replaceWith(Object.assign(avatar(name, contactId(c) || c.id), { id: "conv-avatar" }));
    $("conv-name").textContent = name;
    const type = channelType(c.channel_type);
    fill($("conv-channel"), icon(type.icon), h("span", { class: "sr-only", text: `${type.label}: ` }),
      `${c.channel} · #${c.id}`);
    $("conv-channel").title = `${type.label} channel “${c.channel}”`;
    $("conv-channel").dataset.channelType = c.channel_type || "";
    fill($("conv-owner"), icon(c.owner === "ai" ? "sparkles" : c.owner === "none" ? "clock" : "user"),
      ownerLabel(c.owner));
    $("conv-owner").className = `chip${c.owner === "ai" ? " chip-ai" : c.owner === "none" ? " chip-wait" : isMine(c.owner) ? " chip-mine" : ""}`;
    $("conv-status").textContent = c.status === "closed" ? "Closed" : "Open";
    $("conv-status").className = `chip ${c.status === "closed" ? "chip-closed" : "chip-open"}`;
    renderConversationLabels(c, () => { this.refresh(); this.onChanged(); });
    renderSnooze(c, () => { this.refresh(); this.onChanged(); });
    this.renderWindow();
    $("conv-reports").hidden = c.delivery_reports !== false;
    this.timeline.noReports = c.delivery_reports === false;
    this.renderActions();
    this.renderHandover();
    this.renderUndelivered();
    this.renderComposer();
    this.renderDetails();
    this.timeline.merge(c.messages || []);
    this.timeline.offerEarlier(this.earlierBefore ? () => this.loadEarlier() : null);
  }

  renderActions() {
    const c = this.conversation;
    const can = possible(c);
    document.querySelector(".actions").hidden = false;
    const assignMe = $("act-assign-me");
    assignMe.hidden = !can.assignMe;
    assignMe.lastChild.textContent = can.force ? "Take over" : c.owner === "ai" ? "Take over" : "Assign to me";
    assignMe.title = can.force ? `Take over from ${ownerLabel(c.owner)} (admin)` : "Assign this conversation to you";
    const unassign = $("act-unassign");
    unassign.hidden = !can.unassign;
    unassign.lastChild.textContent = c.owner === "ai" ? "Unassign AI" : "Unassign";
    unassign.title = c.owner === "ai" ? "Stop the AI now; the conversation waits for a human"
      : "Put the conversation back in Waiting for a human";
    const handBack = $("act-hand-back");
    handBack.hidden = !can.handBack;
    handBack.disabled = can.handBackBlocked;
    handBack.title = can.handBackBlocked ? "The AI agent is unpublished" : `Let ${aiName()} answer again`;
    const select = $("act-assign-to");
    const others = [...store.team.values()].filter((a) => `agent:${a.id}` !== c.owner && a.id !== store.me.id);
    select.hidden = !can.assignTo || !others.length;
    fill(select, h("option", { value: "", text: "Assign to…" }),
      others.map((a) => h("option", { value: a.id, text: a.name })));
    $("act-close").hidden = !can.close;
    $("act-reopen").hidden = !can.reopen;
  }

  /** The composer writes a reply to the customer, or a private note for the team. */
  setMode(noting) {
    this.noting = noting;
    $("mode-reply").setAttribute("aria-pressed", String(!noting));
    $("mode-note").setAttribute("aria-pressed", String(noting));
    $("composer").classList.toggle("is-note", noting);
    if (this.conversation) this.renderComposer();
    $("composer-text").focus();
  }

  renderHandover() {
    const c = this.conversation;
    const card = $("handover-card");
    const waiting = c.status === "open" && c.owner === "none";
    card.hidden = !waiting;
    if (!waiting) return;
    const since = c.waiting_since || c.handover_at || c.updated_at;
    fill(card,
      h("div", { class: "handover-head" }, icon("clock"),
        h("strong", {}, "Waiting for a human · ", h("span", { dataset: { waited: since }, text: waited(since) })),
        c.form_state === "sent" ? h("span", { class: "chip chip-form" }, "Contact form sent") : null,
        c.form_state === "done" ? h("span", { class: "chip chip-done" }, "Contact details left") : null),
      c.handover_reason ? h("p", {}, h("span", { class: "label", text: "Reason" }), c.handover_reason) : null,
      c.handover_summary ? h("p", {}, h("span", { class: "label", text: "Summary" }), c.handover_summary) : null);
  }

  /** Messages of the latest page whose delivery failed or is unknown: one button sends them all again (the server
   * asks the provider first where it can, and sends only what it does not have). */
  renderUndelivered() {
    const c = this.conversation;
    const bar = $("undelivered-bar");
    const stuck = c.status === "open"
      ? (c.messages || []).filter((m) => UNDELIVERED.has(m.delivery) && !m.delivery_final) : [];
    bar.hidden = !stuck.length;
    if (!stuck.length) return fill(bar);
    const unknown = stuck.filter((m) => m.delivery === "unknown").length;
    const count = stuck.length === 1 ? "1 message" : `${stuck.length} messages`;
    fill(bar, icon("alert"),
      h("p", {}, `${count} may not have reached the customer.`,
        unknown ? " Those the channel already has are not sent twice where Baton can ask it (Twilio); " +
          "elsewhere they may arrive twice." : ""),
      h("button", { class: "btn btn-small", type: "button", onclick: (event) => this.resendAll(event.currentTarget) },
        "Send all again"));
  }

  async resendAll(button) {
    const id = this.id;
    button.disabled = true;
    try {
      await api.resendAll(id);
    } catch (error) {
      this.onError(error);
    }
    button.disabled = false;
    if (id === store.openId) await this.refresh();
  }

  /** WhatsApp's 24-hour window: when it closes, counted down in the header (refreshed every half minute). */
  renderWindow() {
    const c = this.conversation;
    const chip = $("conv-window");
    const closes = c && c.status === "open" ? c.window_closes_at : null;
    chip.hidden = !closes;
    if (!closes) return;
    const left = closes - Date.now();
    const closed = left <= 0;
    chip.className = `chip ${closed ? "chip-window-closed" : left < 3600000 ? "chip-window-soon" : "chip-window"}`;
    chip.textContent = closed ? "24-hour window closed" : `Window closes in ${duration(left)}`;
    chip.title = closed
      ? "The customer wrote more than 24 hours ago: WhatsApp takes only an approved template until they write again"
      : `WhatsApp takes free text until ${new Date(closes).toLocaleString()}; after that, only a template`;
    clearTimeout(this.windowTimer);
    this.windowTimer = setTimeout(() => {
      if (!this.conversation || this.conversation.id !== c.id) return;
      this.renderWindow();
      if (closed !== windowClosed(this.conversation)) this.renderComposer();
    }, 30000);
  }

  renderComposer() {
    this.checkLength();
    const c = this.conversation;
    const can = possible(c);
    const text = $("composer-text");
    if (this.noting) {
      text.disabled = false;
      $("composer-send").disabled = false;
      text.placeholder = "A private note for the team (the customer never sees it). @name mentions someone.";
      $("composer-hint").textContent = "Only your team sees notes. Enter to save.";
      this.renderTemplates(false);
      return;
    }
    const closed = can.reply && windowClosed(c);
    text.disabled = !can.reply || closed;
    $("composer-send").disabled = !can.reply;
    text.placeholder = closed ? "The 24-hour window is closed: free text cannot reach the customer"
      : can.reply ? `Reply to ${customerName(c)}…` : "";
    this.renderTemplates(closed);
    $("composer-hint").textContent = c.status === "closed"
      ? "This conversation is closed. The customer's next message starts a new one."
      : !can.reply ? `${ownerLabel(c.owner)} is handling this conversation.`
        : closed && !(c.templates || []).length
          ? "The 24-hour window is closed and this channel has no template: the customer can be reached again when they write."
        : closed ? "The 24-hour window is closed: send an approved template."
        : c.owner === "ai" ? "Replying takes over from the AI. Enter to send, Shift+Enter for a new line."
          : c.owner === "none" ? "Replying assigns the conversation to you. Enter to send."
            : "Enter to send, Shift+Enter for a new line.";
  }

  /** The channel's templates, offered when free text cannot go out: pick one, fill in its parameters. */
  renderTemplates(closed) {
    const box = $("composer-templates");
    const templates = (this.conversation.templates || []);
    box.hidden = !closed || !templates.length;
    if (box.hidden) return;
    const chosen = templates.find((t) => t.key === this.templateKey) || templates[0];
    this.templateKey = chosen.key;
    const select = h("select", { id: "template-picker", "aria-label": "Template" },
      templates.map((t) => h("option", { value: t.key, text: `${t.key} (${t.name}${t.language ? `, ${t.language}` : ""})` })));
    select.value = chosen.key;
    select.addEventListener("change", () => {
      this.templateKey = select.value;
      this.renderTemplates(true);
    });
    const previous = this.templateParams && this.templateParams.key === chosen.key ? this.templateParams.values : [];
    const inputs = chosen.params.map((name, n) => h("input", {
      type: "text", class: "template-param", maxlength: "1024", value: previous[n] || "",
      "aria-label": name, placeholder: name,
    }));
    const preview = h("p", { class: "template-body", id: "template-preview" });
    const update = () => {
      const values = inputs.map((i) => i.value);
      this.templateParams = { key: chosen.key, values };
      preview.textContent = (chosen.body || `Template ${chosen.name}`).replace(/\{\{\s*(\d+)\s*\}\}/g,
        (whole, n) => values[Number(n) - 1] || `[${chosen.params[Number(n) - 1] || whole}]`);
    };
    inputs.forEach((input) => input.addEventListener("input", update));
    update();
    fill(box, h("label", { class: "label", text: "Send a template" }), select, preview,
      inputs.length ? h("div", { class: "template-params" }, inputs.map((input, n) =>
        h("label", {}, h("span", { class: "muted", text: chosen.params[n] }), input))) : null);
  }

  renderDetails() {
    const c = this.conversation;
    const contact = c.contact || {};
    const rows = [
      ["Name", contact.name || c.profile_name], ["Phone", contact.phone], ["Email", contact.email],
      ["Message", contact.message], ["Channel", `${channelType(c.channel_type).label} (${c.channel})`],
      ["Address", c.address],
      ["Also reached at", (contact.identities || [])
        .filter((i) => i.channel !== c.channel || i.address !== c.address).map(identityLabel).join(", ")],
      ["Conversations", String((contact.conversations || []).length || 1)],
    ].filter(([, value]) => value);
    const meta = [
      ["Started", c.created_at ? `${new Date(c.created_at).toLocaleString()}` : ""],
      ["Last activity", c.last_message_at ? `${ago(c.last_message_at)} ago` : ""],
      ["Owner", ownerLabel(c.owner)],
      ["Handover", c.handover_reason || ""],
      ["Closed", c.closed_at ? new Date(c.closed_at).toLocaleString() : ""],
    ].filter(([, value]) => value && value !== "now ago");
    fill($("details"),
      h("div", { class: "details-card" },
        avatar(customerName(c), contactId(c) || c.id, "avatar-lg"),
        h("h3", { text: customerName(c) }),
        h("p", { class: "muted", text: contact.email || contact.phone || "No contact details yet" })),
      h("section", { class: "details-section" }, h("h4", { text: "Contact" }), dl(rows)),
      h("section", { class: "details-section" }, h("h4", { text: "Conversation" }), dl(meta)));
  }

  async act(action) {
    if (!this.conversation) return;
    const buttons = document.querySelectorAll(".actions button, .actions select");
    buttons.forEach((b) => b.setAttribute("aria-busy", "true"));
    try {
      const { conversation } = await action();
      if (conversation && conversation.id === store.openId) {
        this.conversation = conversation;
        this.render();
      }
      this.onChanged();
    } catch (error) {
      this.onError(error);
      this.refresh();
    } finally {
      buttons.forEach((b) => b.removeAttribute("aria-busy"));
    }
  }

  /** Send again a message whose delivery is unknown or failed, but not for good (it may reach the customer twice). */
  async resend(messageId) {
    const id = this.id;
    try {
      await api.resend(id, messageId);
    } catch (error) {
      this.onError(error);
    }
    if (id === store.openId) await this.refresh();
  }

  /** The reply's length against what one reply (or note) may be and what one message on the channel may be. A long
   * paste is kept whole and counted, never cut: past the channel's limit it is said how many messages it goes out as
   * (the server splits it); past one reply's limit it cannot be sent as it is, says why, and offers to send it in
   * parts, as the widget does for visitors. */
  checkLength() {
    const field = $("composer-text");
    const count = $("composer-count");
    const note = $("composer-length");
    const limits = (this.conversation && this.conversation.limits) || DEFAULT_LIMITS;
    const text = field.value.trim();
    const length = textLength(text);
    const what = this.noting ? "note" : "reply";
    this.tooLong = length > limits.text;
    const shown = !field.disabled && length > Math.min(limits.text, this.noting ? limits.text : limits.channel) * 0.8;
    count.hidden = !shown;
    count.textContent = `${length.toLocaleString("en")} / ${limits.text.toLocaleString("en")}`;
    count.classList.toggle("is-over", this.tooLong);
    note.classList.toggle("is-over", this.tooLong);
    if (this.tooLong && !field.disabled) {
      const parts = splitText(text, limits.text).length;
      fill(note, `This ${what} is ${length.toLocaleString("en")} characters long; one ${what} can have at most `
        + `${limits.text.toLocaleString("en")}, so it is not sent as it is. Shorten it, or `,
        h("button", { id: "composer-split", type: "button", onclick: () => this.sendInParts() },
          `send it as ${parts} ${this.noting ? "notes" : "replies"}`), ".");
      note.hidden = false;
    } else if (!this.noting && !field.disabled && length > limits.channel) {
      const parts = splitText(text, limits.channel).length;
      note.textContent = `Goes out as ${parts} messages: this channel takes at most `
        + `${limits.channel.toLocaleString("en")} characters in one.`;
      note.hidden = false;
    } else {
      note.hidden = true;
    }
  }

  /** A reply (or note) longer than one may be, sent as several in order, each with its own idempotency key; what is
   * not sent yet stays in the composer should one fail. */
  async sendInParts() {
    const field = $("composer-text");
    const button = $("composer-send");
    const limits = (this.conversation && this.conversation.limits) || DEFAULT_LIMITS;
    const parts = splitText(field.value.trim(), limits.text);
    if (!parts.length || button.disabled || !this.id) return;
    const id = this.id;
    const noting = this.noting;
    button.disabled = true;
    try {
      for (let n = 0; n < parts.length; n += 1) {
        const clientId = newClientId();
        await withRetries(() => (noting ? api.note(id, parts[n]) : api.reply(id, parts[n], clientId)));
        field.value = parts.slice(n + 1).join("\n\n");
      }
      await this.refresh();
      this.onChanged();
    } catch (error) {
      this.onError(error);
    } finally {
      this.renderComposer();
      field.focus();
    }
  }

  async send() {
    if (!this.noting && this.conversation && windowClosed(this.conversation)) return this.sendTemplate();
    const field = $("composer-text");
    const text = field.value.trim();
    const button = $("composer-send");
    if (!text || button.disabled || !this.id) return;
    if (this.tooLong || textLength(text) > ((this.conversation && this.conversation.limits) || DEFAULT_LIMITS).text) {
      this.checkLength(); // says why it is not sent, and offers the parts
      $("composer-length").scrollIntoView({ block: "nearest" });
      return;
    }
    if (this.noting) {
      await this.saveNote(field, text, button);
      return;
    }
    // One idempotency key per reply, kept until the server has it: sent again (by the retries below, or by the
    // agent pressing Send once more), the reply is recorded and delivered once.
    if (!this.pending || this.pending.text !== text || this.pending.conversation !== this.id) {
      this.pending = { text, conversation: this.id, clientId: newClientId() };
    }
    const { clientId } = this.pending;
    button.disabled = true;
    try {
      await withRetries(() => api.reply(this.id, text, clientId));
      this.pending = null;
      field.value = "";
      await this.refresh();
      this.onChanged();
    } catch (error) {
      this.onError(error);
    } finally {
      this.renderComposer();
      field.focus();
    }
  }

  /** Send the template picked in the composer, with its parameters (outside the 24-hour window). */
  async sendTemplate() {
    const button = $("composer-send");
    const chosen = (this.conversation.templates || []).find((t) => t.key === this.templateKey);
    if (!chosen || button.disabled || !this.id) return;
    const params = (this.templateParams && this.templateParams.key === chosen.key ? this.templateParams.values : [])
      .map((value) => value.trim());
    const missing = chosen.params.findIndex((_, n) => !params[n]);
    if (missing >= 0) {
      const input = document.querySelectorAll("#composer-templates .template-param")[missing];
      if (input) input.focus();
      $("composer-hint").textContent = `Fill in “${chosen.params[missing]}” to send this template.`;
      return;
    }
    const signature = JSON.stringify([chosen.key, params]);
    if (!this.pending || this.pending.text !== signature || this.pending.conversation !== this.id) {
      this.pending = { text: signature, conversation: this.id, clientId: newClientId() };
    }
    const { clientId } = this.pending;
    button.disabled = true;
    try {
      await withRetries(() => api.template(this.id, chosen.key, params.slice(0, chosen.params.length), clientId));
      this.pending = null;
      this.templateParams = null;
      await this.refresh();
      this.onChanged();
    } catch (error) {
      this.onError(error);
    } finally {
      this.renderComposer();
    }
  }
}

/** Whether the conversation's 24-hour window (WhatsApp) has closed: only a template can go out. */
function windowClosed(conversation) {
  return Boolean(conversation.window_closes_at) && conversation.status === "open"
    && conversation.window_closes_at <= Date.now();
}

/** "3 h 20 min", "12 min", "40 s". */
function duration(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes >= 60) return `${Math.floor(minutes / 60)} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
  return minutes ? `${minutes} min` : `${Math.max(1, Math.floor(ms / 1000))} s`;
}

ConversationPane.prototype.saveNote = async function saveNote(field, text, button) {
  button.disabled = true;
  try {
    await api.note(this.id, text);
    field.value = "";
    await this.refresh();
  } catch (error) {
    this.onError(error);
  } finally {
    this.renderComposer();
    field.focus();
  }
};

const REPLY_RETRIES = [1000, 2000, 4000]; // ms: a reply the server could not confirm is sent again, same key

/** A call tried again while the server cannot be reached or answers 5xx (its outcome unknown: the idempotency
 * key makes the retry safe). */
async function withRetries(call) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      const retryable = error.status === 0 || error.status >= 500;
      if (!retryable || attempt >= REPLY_RETRIES.length) throw error;
      await new Promise((resolve) => { setTimeout(resolve, REPLY_RETRIES[attempt]); });
    }
  }
}

function dl(rows) {
  return h("dl", { class: "details-list" }, rows.map(([term, value]) => [h("dt", { text: term }), h("dd", { text: value })]));
}
