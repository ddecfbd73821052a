// How one message of the conversation looks to the visitor. Every text goes in as text, never as HTML.

import { clock, h } from "../inbox/dom.js";
import { t } from "./i18n.js";

/** names: {ai(message), agent(message)}: who the team member behind a message is. */
export function renderMessage(message, names, origin) {
  const who = message.author;
  if (who === "customer") {
    return h("li", { class: "bw-msg bw-from-me", dataset: { id: message.id } },
      h("div", { class: "bw-bubble", text: message.text || "" }), media(message.media, origin));
  }
  const name = who === "ai" ? names.ai(message) : names.agent(message);
  return h("li", { class: `bw-msg bw-from-team bw-from-${who}`, dataset: { id: message.id } },
    h("span", { class: "bw-who" }, h("span", { class: "bw-who-name", text: name }),
      who === "ai" ? h("span", { class: "bw-ai-tag", text: "AI" }) : null,
      h("time", { text: clock(message.created_at || Date.now()) })),
    message.text ? h("div", { class: "bw-bubble", text: message.text }) : null, media(message.media, origin));
}

export function renderNotice(message) {
  if (message.kind === "closed") {
    return h("li", { class: "bw-divider bw-closed", dataset: { id: message.id } },
      h("span", { text: message.text || t("closed") }),
      h("span", { class: "bw-divider-sub", text: t("start_new") }));
  }
  return h("li", { class: "bw-notice", dataset: { id: message.id }, text: message.text || "" });
}

export function greeting(text) {
  return h("li", { class: "bw-msg bw-from-team bw-greeting" }, h("div", { class: "bw-bubble", text }));
}

export function newConversationDivider() {
  return h("li", { class: "bw-divider bw-new" }, h("span", { text: t("new_conversation") }));
}

/** A message the visitor typed, shown at once and marked as pending until the server has it. */
export function pendingBubble(text) {
  return h("li", { class: "bw-msg bw-from-me bw-pending" }, h("div", { class: "bw-bubble", text }),
    h("span", { class: "bw-status", "aria-live": "polite" }));
}

function media(items, origin) {
  if (!items || !items.length) return null;
  return h("div", { class: "bw-media" }, items.map((item) => {
    // Relative to Baton, not to the page the widget is embedded in (h() then allows http(s) only).
    const url = absolute(item.url, origin);
    return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" },
      String(item.content_type || "").startsWith("image/") ? h("img", { src: url, alt: t("image") })
        : String(item.url || "attachment").split("/").pop());
  }));
}

function absolute(value, origin) {
  try {
    return new URL(String(value || ""), origin).href;
  } catch {
    return "#";
  }
}
