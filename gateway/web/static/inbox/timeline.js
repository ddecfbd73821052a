// One conversation's history: customer, AI, agent and system events, each told apart.
// Messages are keyed by id, so reloading after a reconnect never shows one twice.

import { avatar, clock, day, fill, h, icon } from "./dom.js";

export class Timeline {
  constructor(list, people) {
    this.list = list;
    // {ownerLabel(owner), agentName(id), aiName(), customerName(), customerSeed(), resend(messageId)}
    this.people = people;
    this.reset();
  }

  reset() {
    fill(this.list);
    this.list.dataset.fresh = "yes";
    this.seen = new Set();
    this.shown = []; // the messages shown, oldest first
    this.deliveries = new Map(); // message id -> {shown: "<delivery>|<reason>"}
    this.reasons = new Map(); // message id -> why its delivery failed
    this.lastDay = "";
    this.earlier = null; // the "Earlier messages" control, while older ones exist
  }

  /** Append the messages not shown yet (history only grows) and update the delivery of those shown;
   * true when something was added. */
  merge(messages) {
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 120;
    this.reasons = new Map([...this.reasons, ...failureReasons(messages)]);
    let added = false;
    for (const message of messages) {
      if (this.seen.has(message.id)) {
        this.updateDelivery(message);
        continue;
      }
      this.show(message);
      added = true;
    }
    if (added && (nearBottom || this.list.dataset.fresh !== "no")) {
      this.list.dataset.fresh = "no";
      this.list.scrollTop = this.list.scrollHeight;
    }
    return added;
  }

  show(message) {
    this.seen.add(message.id);
    this.shown.push(message);
    const when = day(message.created_at);
    if (when !== this.lastDay) {
      this.lastDay = when;
      this.list.appendChild(h("li", { class: "day" }, h("span", { text: when })));
    }
    this.list.appendChild(this.render(message));
  }

  /** Older messages (a page back) go above those shown; the agent's place in the list stays where it was. */
  showEarlier(messages) {
    const older = messages.filter((m) => !this.seen.has(m.id));
    if (!older.length) return;
    const fromBottom = this.list.scrollHeight - this.list.scrollTop;
    const all = [...older, ...this.shown];
    const earlier = this.earlier;
    fill(this.list);
    this.seen = new Set();
    this.shown = [];
    this.deliveries = new Map();
    this.lastDay = "";
    this.reasons = new Map([...this.reasons, ...failureReasons(older)]);
    if (earlier) this.list.appendChild(earlier);
    for (const message of all) this.show(message);
    this.list.scrollTop = this.list.scrollHeight - fromBottom;
  }

  /** Offer the messages before those shown (`load` fetches them for showEarlier), or stop offering (null). */
  offerEarlier(load) {
    if (!load) {
      if (this.earlier) this.earlier.remove();
      this.earlier = null;
      return;
    }
    if (this.earlier) return;
    const button = h("button", { class: "btn btn-small", type: "button", onclick: async () => {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      try {
        await load();
      } finally {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    } }, "Earlier messages");
    this.earlier = h("li", { class: "earlier" }, button);
    this.list.insertBefore(this.earlier, this.list.firstChild);
  }

  render(m) {
    if (m.author === "system") return this.system(m);
    if (m.kind === "suppressed") return this.system(m);
    return this.bubble(m);
  }

  bubble(m) {
    const who = m.author === "customer" ? this.people.customerName()
      : m.author === "ai" ? (m.agent_name || this.people.aiName())
        : (m.agent_name || this.people.agentName(m.agent) || "Agent");
    const role = { customer: "Customer", ai: "AI agent", agent: "Agent" }[m.author] || m.author;
    const badge = m.author === "ai" ? h("span", { class: "tag tag-ai" }, icon("sparkles"), "AI")
      : m.author === "agent" ? h("span", { class: "tag tag-agent" }, "Team") : null;
    const internal = m.kind === "note" ? h("span", { class: "tag tag-note" }, icon("lock"), "Private note")
      : m.visibility === "internal" ? h("span", { class: "tag tag-internal" }, icon("lock"), "Internal") : null;
    return h("li", { class: `msg msg-${m.author}${m.kind === "note" ? " msg-note" : ""}`, dataset: { id: m.id, author: m.author, kind: m.kind } },
      m.author === "customer" ? avatar(who, this.people.customerSeed(), "avatar-sm") : null,
      h("div", { class: "msg-body" },
        h("div", { class: "msg-head" }, h("span", { class: "msg-who", text: who }), badge, internal,
          h("span", { class: "sr-only", text: `(${role})` }),
          h("time", { class: "msg-time", datetime: new Date(m.created_at).toISOString(), text: clock(m.created_at) })),
        m.text ? h("div", { class: "bubble", text: m.text }) : null,
        media(m.media),
        sources(m),
        this.delivery(m)),
      m.author !== "customer" ? (m.author === "ai" ? h("span", { class: "avatar avatar-sm avatar-ai", "aria-hidden": "true" }, icon("sparkles"))
        : avatar(who, m.agent || who, "avatar-sm")) : null);
  }

  /** Where a message of the team stands with the provider. An unknown outcome can be sent again, and so can a failure
   * that is not for good (rate limited, unreachable, the provider down), with its reason said. */
  delivery(m) {
    if (!m.delivery) return null;
    const reason = m.delivery_error || this.reasons.get(m.id) || "";
    this.deliveries.set(m.id, { shown: `${m.delivery}|${reason}|${m.delivery_final ? 1 : 0}` });
    const base = { class: `delivery delivery-${m.delivery}`, dataset: { delivery: m.delivery } };
    const again = () => h("button", { class: "btn btn-small", type: "button", onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      await this.people.resend(m.id);
      button.disabled = false;
    } }, "Send again");
    if (m.delivery === "unknown") {
      return h("span", { ...base, role: "status", title: reason }, icon("alert"),
        reason ? `May not have been delivered: ${reason}` : "May not have been delivered", again());
    }
    if (m.delivery === "failed" || m.delivery === "undelivered") {
      return h("span", { ...base, dataset: { delivery: m.delivery, final: m.delivery_final ? "yes" : "no" } },
        icon("alert"), h("span", { class: "delivery-reason", text: reason ? `Not delivered: ${reason}` : "Not delivered" }),
        m.delivery_final ? null : again());
    }
    if (this.noReports && ["queued", "accepted", "sent"].includes(m.delivery)) { // public_url unset: no news will come
      return h("span", { ...base, text: "Sent (no delivery reports)",
        title: "public_url is not set: the provider cannot say whether it was delivered" });
    }
    return h("span", { ...base, text: DELIVERY[m.delivery] || m.delivery });
  }

  updateDelivery(m) {
    const reason = m.delivery_error || this.reasons.get(m.id) || "";
    const before = this.deliveries.get(m.id);
    if (!m.delivery || (before && before.shown === `${m.delivery}|${reason}|${m.delivery_final ? 1 : 0}`)) return;
    const node = this.list.querySelector(`[data-id="${CSS.escape(m.id)}"] .msg-body`);
    if (!node) return;
    const line = this.delivery(m);
    const old = node.querySelector(".delivery");
    if (old) old.replaceWith(line);
    else node.appendChild(line);
  }

  system(m) {
    const time = h("time", { class: "msg-time", datetime: new Date(m.created_at).toISOString(), text: clock(m.created_at) });
    const data = m.data || {};
    const internal = m.visibility === "internal" ? h("span", { class: "tag tag-internal" }, icon("lock"), "Internal") : null;
    const base = { dataset: { id: m.id, author: m.author, kind: m.kind } };
    switch (m.kind) {
      case "handover":
        return h("li", { ...base, class: "card-event card-handover" },
          h("div", { class: "card-event-head" }, icon("alert"), h("strong", { text: "Handed over to the team" }), internal, time),
          h("p", {}, h("span", { class: "label", text: "Reason" }), h("span", { text: data.reason || m.text || "" })),
          data.summary ? h("p", {}, h("span", { class: "label", text: "Summary" }), h("span", { text: data.summary })) : null);
      case "assignment":
        return h("li", { ...base, class: "event event-assignment" },
          icon(data.owner === "ai" ? "sparkles" : data.owner === "none" ? "clock" : "user"),
          h("span", { text: this.assignment(data) }), time);
      case "contact_form":
        return h("li", { ...base, class: "card-event card-form" },
          h("div", { class: "card-event-head" }, icon("mail"), h("strong", { text: "Contact form sent to the customer" }), time),
          h("p", { class: "muted", text: m.text || "" }),
          h("ul", { class: "field-list" },
            ((m.rich && m.rich.fields) || []).map((f) => h("li", { text: f.label || f.name }))));
      case "contact_captured":
        return h("li", { ...base, class: "card-event card-contact" },
          h("div", { class: "card-event-head" }, icon("check-circle"), h("strong", { text: "The customer left their contact details" }), internal, time),
          h("dl", { class: "details-list" },
            ["name", "phone", "email", "message"].filter((k) => data[k]).map((k) => [
              h("dt", { text: k[0].toUpperCase() + k.slice(1) }), h("dd", { text: data[k] })])));
      case "closed":
        return h("li", { ...base, class: "event event-closed" }, icon("check-circle"),
          h("span", { text: `Conversation closed${closedBy(data.actor, this.people)}` }), time);
      case "reopened":
        return h("li", { ...base, class: "event event-reopened" }, icon("corner"),
          h("span", { text: `Conversation reopened${closedBy(data.actor, this.people)}` }), time);
      case "suppressed":
        return h("li", { ...base, class: "card-event card-muted" },
          h("div", { class: "card-event-head" }, icon("sparkles"), h("strong", { text: "AI reply not sent: a human holds the conversation" }), internal, time),
          m.text ? h("p", { class: "quote", text: m.text }) : null);
      case "csat": {
        const rating = Number(data.rating) || 0;
        const credited = data.by === "human" ? "the team" : `${this.people.aiName()} (AI)`;
        return h("li", { ...base, class: "card-event card-csat" },
          h("div", { class: "card-event-head" }, icon("check-circle"),
            h("strong", { text: `Customer rated ${rating}/5 ${"★".repeat(rating)}${"☆".repeat(5 - rating)}` }), internal, time),
          h("p", { class: "muted", text: `Credited to ${credited}${data.via === "reply" ? ", by a WhatsApp reply" : ""}` }),
          m.text ? h("p", { class: "quote", text: m.text }) : null);
      }
      case "sla_breached": {
        const what = data.kind === "next" ? "next answer" : "first answer";
        const had = data.owner && data.owner.startsWith("agent:") ? ` (${this.people.ownerLabel(data.owner)} had it)` : "";
        return h("li", { ...base, class: "event event-sla" }, icon("alert"),
          h("span", { text: `Response target for the ${what} missed${had}` }), time);
      }
      case "delivery_failed":
        return h("li", { ...base, class: "card-event card-error" },
          h("div", { class: "card-event-head" }, icon("alert"), h("strong", { text: "Delivery failed" }), time),
          h("p", { text: m.text || "" }));
      default:
        return h("li", { ...base, class: "event event-notice" }, h("span", { text: m.text || m.kind }), time);
    }
  }

  assignment(data) {
    const actor = this.people.ownerLabel(data.actor || "");
    const owner = this.people.ownerLabel(data.owner || "");
    const previous = this.people.ownerLabel(data.previous || "");
    if (data.reason === "replied") return `${owner} replied and took over from ${previous}`;
    if (data.actor === "sla") return `${previous} missed the response target: back to the queue`;
    if (data.owner === "none") return `${previous} unassigned by ${actor}: waiting for a human`;
    if (data.owner === "ai") return `Handed back to ${owner} by ${actor}`;
    if (data.actor === data.owner) return `${owner} assigned the conversation to themselves`;
    return `Assigned to ${owner} by ${actor}`;
  }
}

function closedBy(actor, people) {
  if (!actor) return "";
  if (actor === "auto") return " automatically: resolved by the AI, the customer quiet since its answer";
  return actor === "ai" ? ` by ${people.aiName()} (AI)` : ` by ${people.ownerLabel(actor)}`;
}

const DELIVERY = { pending: "Queued", queued: "Queued", accepted: "Queued", sending: "Sending", sent: "Sent", delivered: "Delivered",
  read: "Read" };

/** Why each message could not be delivered, from the internal "Delivery failed" events of the history. */
function failureReasons(messages) {
  const reasons = new Map();
  for (const m of messages) {
    if (m.kind === "delivery_failed" && m.data && m.data.message) {
      reasons.set(m.data.message, String(m.text || "").replace(/^Delivery failed:\s*/, ""));
    }
  }
  return reasons;
}

/** "answered from: Returns policy": the knowledge an AI answer used (its message's data.sources), as text. */
function sources(m) {
  const used = (m.author === "ai" && m.data && Array.isArray(m.data.sources)) ? m.data.sources : [];
  const titles = [...new Set(used.map((s) => String(s.title || s.article || "")).filter(Boolean))];
  if (!titles.length) return null;
  return h("div", { class: "msg-sources", text: `answered from: ${titles.join(", ")}` });
}

function media(items) {
  if (!items || !items.length) return null;
  return h("div", { class: "media" }, items.map((item) => {
    const type = item.content_type || "";
    const name = fileName(item.url);
    if (type.startsWith("image/")) {
      return h("a", { class: "media-thumb", href: item.url, target: "_blank", rel: "noopener noreferrer" },
        h("img", { src: item.url, alt: `Image attachment (${type})`, loading: "lazy" }));
    }
    return h("a", { class: "media-file", href: item.url, target: "_blank", rel: "noopener noreferrer" },
      icon("paperclip"), h("span", { text: name }), h("span", { class: "muted", text: type }));
  }));
}

/** The last part of a media URL as a person reads it; a malformed escape ("%E0%A4%A") is shown as it is,
 * never allowed to drop the message (decodeURIComponent throws on it). */
function fileName(url) {
  const last = String(url || "").split("/").pop() || "attachment";
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}
