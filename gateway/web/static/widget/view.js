// The widget's markup: a launcher and a panel (header, message log, composer), inside a shadow root so
// the host page and the widget cannot restyle each other.

import { append, h, icon } from "../inbox/dom.js";
import { t } from "./i18n.js";

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
    title: h("h2", { class: "bw-title", id: "bw-title", text: t("title") }),
    sub: h("p", { class: "bw-sub", "aria-live": "polite" }),
    closeButton: h("button", { class: "bw-icon-btn", type: "button", "aria-label": t("close_chat") }, bwIcon("x")),
    log: h("ol", { class: "bw-log", role: "log", "aria-live": "polite", "aria-label": t("messages"), tabindex: "0" }),
    typing: h("li", { class: "bw-typing", hidden: true, "aria-hidden": "true" }, h("span"), h("span"), h("span")),
    connection: h("p", { class: "bw-connection", role: "status", hidden: true }),
    lengthNote: h("p", { class: "bw-length", role: "alert", hidden: true }),
    input: h("textarea", {
      id: "bw-input", class: "bw-input", rows: "1", placeholder: t("placeholder"), autocomplete: "off",
    }),
  };
  view.launcher = h("button", {
    class: "bw-launcher", type: "button", "aria-label": t("open_chat"), "aria-expanded": "false",
    "aria-controls": "bw-panel",
  }, bwIcon("message"), bwIcon("x"), view.badge);
  view.composer = h("form", { class: "bw-composer" },
    view.inputLabel = h("label", { class: "bw-sr", for: "bw-input", text: t("message") }), view.input,
    view.sendButton = h("button", { class: "bw-send", type: "submit", "aria-label": t("send_message") }, bwIcon("send")));
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

/** Say the view's own words again in the language now in force (the server told it after the view was built). */
export function relabel(view, title, open) {
  view.title.textContent = title || t("title");
  view.closeButton.setAttribute("aria-label", t("close_chat"));
  view.log.setAttribute("aria-label", t("messages"));
  view.input.setAttribute("placeholder", t("placeholder"));
  view.inputLabel.textContent = t("message");
  view.sendButton.setAttribute("aria-label", t("send_message"));
  view.launcher.setAttribute("aria-label", open ? t("close_chat") : t("open_chat"));
}
