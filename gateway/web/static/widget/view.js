// The widget's markup: a launcher and a panel (header, message log, composer), inside a shadow root so
// the host page and the widget cannot restyle each other.

import { append, h, icon } from "../inbox/dom.js";

export function bwIcon(name) {
  return icon(name, "bw-icon");
}

export function buildView(origin, channel) {
  const host = h("div", { id: "baton-webchat", "data-channel": channel });
  const shadow = host.attachShadow({ mode: "open" });
  const root = h("div", { class: "bw", hidden: true });
  // The stylesheet is a plain <link>, not a module: it needs no CORS from the Baton origin.
  const stylesheet = h("link", { rel: "stylesheet", href: `${origin}/static/widget.css` });
  const reveal = () => root.removeAttribute("hidden");
  stylesheet.addEventListener("load", reveal);
  stylesheet.addEventListener("error", reveal);
  setTimeout(reveal, 3000);

  const view = {
    host,
    badge: h("span", { class: "bw-badge", hidden: true, "aria-hidden": "true" }),
    title: h("h2", { class: "bw-title", id: "bw-title", text: "Chat with us" }),
    sub: h("p", { class: "bw-sub", "aria-live": "polite" }),
    closeButton: h("button", { class: "bw-icon-btn", type: "button", "aria-label": "Close chat" }, bwIcon("x")),
    log: h("ol", { class: "bw-log", role: "log", "aria-live": "polite", "aria-label": "Messages", tabindex: "0" }),
    typing: h("li", { class: "bw-typing", hidden: true, "aria-hidden": "true" }, h("span"), h("span"), h("span")),
    connection: h("p", { class: "bw-connection", role: "status", hidden: true }),
    lengthNote: h("p", { class: "bw-length", role: "alert", hidden: true }),
    input: h("textarea", {
      id: "bw-input", class: "bw-input", rows: "1", placeholder: "Write a message…", autocomplete: "off",
    }),
  };
  view.launcher = h("button", {
    class: "bw-launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false",
    "aria-controls": "bw-panel",
  }, bwIcon("message"), bwIcon("x"), view.badge);
  view.composer = h("form", { class: "bw-composer" },
    h("label", { class: "bw-sr", for: "bw-input", text: "Message" }), view.input,
    h("button", { class: "bw-send", type: "submit", "aria-label": "Send message" }, bwIcon("send")));
  view.panel = h("div", {
    class: "bw-panel", id: "bw-panel", role: "dialog", "aria-labelledby": "bw-title", hidden: true,
  },
  h("header", { class: "bw-head" },
    h("span", { class: "bw-head-avatar", "aria-hidden": "true" }, bwIcon("sparkles")),
    h("div", { class: "bw-head-text" }, view.title, view.sub),
    view.closeButton),
  view.log, view.connection, view.lengthNote, view.composer,
  h("p", { class: "bw-foot" }, "Powered by ", h("strong", { text: "Baton" })));
  view.log.appendChild(view.typing);
  append(root, [view.panel, view.launcher]);
  append(shadow, [stylesheet, root]);
  view.root = root;
  return view;
}

export function showConnection(view, text) {
  view.connection.textContent = text || "";
  view.connection.hidden = !text;
}

export function scrollDown(view) {
  view.log.scrollTop = view.log.scrollHeight;
}

/** Scroll so that the top of a tall item (the contact form) shows, not its end. */
export function scrollToTop(view, node) {
  scrollDown(view);
  const offset = node.getBoundingClientRect().top - view.log.getBoundingClientRect().top;
  if (offset < 0) view.log.scrollTop += offset - 8;
}

export function resizeInput(view) {
  view.input.style.height = "auto";
  view.input.style.height = `${Math.min(view.input.scrollHeight, 120)}px`;
}
