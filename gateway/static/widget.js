/* Baton webchat widget: one tag on any site opens a chat with your team and its AI agent.
 *
 *   <script src="https://support.example.com/widget.js" data-channel="webchat" async></script>
 *
 * It talks only to the origin it was loaded from, with the visitor token that origin issued, and keeps
 * its markup and styles in a shadow root so the host page and the widget cannot restyle each other.
 * Every message and name is inserted as text, never as HTML.
 */
(function () {
  "use strict";

  const script = document.currentScript;
  if (!script || window.BatonWidget) return;
  const ORIGIN = new URL(script.src, location.href).origin;
  const CHANNEL = script.getAttribute("data-channel") || "webchat";
  const API = `${ORIGIN}/webchat/${encodeURIComponent(CHANNEL)}`;
  const KEY = `baton.webchat.${CHANNEL}@${ORIGIN}`;
  const RETRY_DELAYS = [1000, 2000, 4000];
  const SVG = "http://www.w3.org/2000/svg";
  const ICONS = {
    chat: "M21 11.5a8.4 8.4 0 0 1-9 8.4 8.9 8.9 0 0 1-3.8-.9L3 20.5l1.5-4.6a8.3 8.3 0 0 1-1-4.4A8.5 8.5 0 0 1 12 3a8.4 8.4 0 0 1 9 8.5z",
    close: "M18 6 6 18M6 6l12 12",
    send: "M22 2 11 13M22 2l-7 20-4-9-9-4 20-7z",
    sparkles: "M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9zM19 15l.8 2.2L22 18l-2.2.8L19 21l-.8-2.2L16 18l2.2-.8z",
    check: "M20 6 9 17l-5-5",
    alert: "M12 9v4M12 17h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z",
  };

  // --- small helpers ---------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function icon(name) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "bw-icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  const storage = {
    get(name, fallback) {
      try {
        const raw = localStorage.getItem(`${KEY}.${name}`);
        return raw ? JSON.parse(raw) : fallback;
      } catch {
        return fallback;
      }
    },
    set(name, value) {
      try {
        if (value === null) localStorage.removeItem(`${KEY}.${name}`);
        else localStorage.setItem(`${KEY}.${name}`, JSON.stringify(value));
      } catch {
        // Storage may be full or blocked (private mode): the chat still works for this page view.
      }
    },
  };

  class RequestFailed extends Error {
    constructor(status, body) {
      super((body && body.error) || (status ? `HTTP ${status}` : "network error"));
      this.status = status;
      this.body = body || {};
    }

    get retryable() {
      return this.status === 0 || this.status === 429 || this.status >= 500;
    }
  }

  // --- the widget ------------------------------------------------------------------------------

  const state = {
    session: storage.get("session", null), // {token, title, greeting}
    outbox: storage.get("outbox", []), // [{client_id, text}] not yet acknowledged by the server
    pending: [], // {client_id, text, node, status, id, tries}
    seen: new Set(), // "<conversation>/<message>" already shown
    conversation: null,
    formPending: false,
    source: null,
    lastEventId: "",
    reconnectTimer: 0,
    retries: 0,
    unread: 0,
    open: false,
    typingTimer: 0,
    lastReplyAuthor: "",
    activeForm: null,
    aiName: "Assistant", // the AI agent's name, once one of its messages told us
  };

  const host = el("div", { id: "baton-webchat", "data-channel": CHANNEL });
  const shadow = host.attachShadow({ mode: "open" });
  const root = el("div", { class: "bw", hidden: true });
  const stylesheet = el("link", { rel: "stylesheet", href: `${ORIGIN}/static/widget.css` });
  const reveal = () => root.removeAttribute("hidden");
  stylesheet.addEventListener("load", reveal);
  stylesheet.addEventListener("error", reveal);
  setTimeout(reveal, 3000);

  const badge = el("span", { class: "bw-badge", hidden: true, "aria-hidden": "true" });
  const launcher = el("button", {
    class: "bw-launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false",
    "aria-controls": "bw-panel",
  }, icon("chat"), icon("close"), badge);
  const title = el("h2", { class: "bw-title", id: "bw-title", text: "Chat with us" });
  const closeButton = el("button", { class: "bw-icon-btn", type: "button", "aria-label": "Close chat" }, icon("close"));
  const log = el("ol", { class: "bw-log", role: "log", "aria-live": "polite", "aria-label": "Messages", tabindex: "0" });
  const typing = el("li", { class: "bw-typing", hidden: true, "aria-hidden": "true" }, el("span"), el("span"), el("span"));
  const connection = el("p", { class: "bw-connection", role: "status", hidden: true });
  const input = el("textarea", {
    id: "bw-input", class: "bw-input", rows: "1", maxlength: "4096", placeholder: "Write a message…",
    autocomplete: "off",
  });
  const sendButton = el("button", { class: "bw-send", type: "submit", "aria-label": "Send message" }, icon("send"));
  const composer = el("form", { class: "bw-composer" },
    el("label", { class: "bw-sr", for: "bw-input", text: "Message" }), input, sendButton);
  const panel = el("div", {
    class: "bw-panel", id: "bw-panel", role: "dialog", "aria-labelledby": "bw-title", hidden: true,
  },
  el("header", { class: "bw-head" },
    el("span", { class: "bw-head-avatar", "aria-hidden": "true" }, icon("sparkles")),
    el("div", { class: "bw-head-text" }, title,
      el("p", { class: "bw-sub", text: "We reply in seconds. Ask for a person any time." })),
    closeButton),
  log, connection, composer,
  el("p", { class: "bw-foot" }, "Powered by ", el("strong", { text: "Baton" })));
  root.append(panel, launcher);
  shadow.append(stylesheet, root);

  // --- HTTP --------------------------------------------------------------------------------------

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`${API}${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new RequestFailed(0, null);
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new RequestFailed(response.status, data);
    return data;
  }

  async function ensureSession() {
    if (state.session) return state.session;
    const data = await call("POST", "/sessions");
    state.session = { token: data.token, title: data.title, greeting: data.greeting };
    storage.set("session", state.session);
    showHeader();
    connect();
    return state.session;
  }

  async function renewSession() {
    state.session = null;
    storage.set("session", null);
    disconnect();
    return ensureSession();
  }

  // --- rendering ----------------------------------------------------------------------------------

  function showHeader() {
    const session = state.session;
    title.textContent = (session && session.title) || "Chat with us";
    if (!log.querySelector(".bw-greeting")) {
      log.prepend(el("li", { class: "bw-msg bw-from-team bw-greeting" },
        el("div", { class: "bw-bubble", text: (session && session.greeting) || "Hi! How can we help you today?" })));
    }
  }

  function firstPendingNode() {
    const item = state.pending.find((p) => p.node.isConnected);
    return item ? item.node : typing;
  }

  function place(node) {
    log.insertBefore(node, firstPendingNode());
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  /** Scroll so that the top of a tall item (the contact form) shows, not its end. */
  function scrollToTop(node) {
    scrollDown();
    const offset = node.getBoundingClientRect().top - log.getBoundingClientRect().top;
    if (offset < 0) log.scrollTop += offset - 8;
  }

  function renderMessage(message) {
    const who = message.author;
    if (who === "system") return renderSystem(message);
    if (who === "customer") {
      return el("li", { class: "bw-msg bw-from-me", "data-id": message.id },
        el("div", { class: "bw-bubble", text: message.text || "" }), media(message.media));
    }
    if (who === "ai" && message.agent_name) state.aiName = message.agent_name;
    const name = message.agent_name || (who === "ai" ? state.aiName : "Support");
    return el("li", { class: `bw-msg bw-from-team bw-from-${who}`, "data-id": message.id },
      el("span", { class: "bw-who" }, name, who === "ai" ? el("span", { class: "bw-ai-tag", text: "AI" }) : null,
        el("time", { text: clock(message.created_at || Date.now()) })),
      message.text ? el("div", { class: "bw-bubble", text: message.text }) : null, media(message.media));
  }

  function renderSystem(message) {
    if (message.kind === "contact_form") return renderForm(message);
    if (message.kind === "closed") {
      return el("li", { class: "bw-divider bw-closed", "data-id": message.id },
        el("span", { text: message.text || "This conversation was closed." }),
        el("span", { class: "bw-divider-sub", text: "Send a message any time to start a new one." }));
    }
    return el("li", { class: "bw-notice", "data-id": message.id, text: message.text || "" });
  }

  function media(items) {
    if (!items || !items.length) return null;
    return el("div", { class: "bw-media" }, items.map((item) => {
      const url = safeUrl(item.url);
      return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" },
        (item.content_type || "").startsWith("image/") ? el("img", { src: url, alt: "Image attachment" })
          : String(item.url || "attachment").split("/").pop());
    }));
  }

  function safeUrl(value) {
    try {
      const url = new URL(String(value || ""), ORIGIN);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : "#";
    } catch {
      return "#";
    }
  }

  // --- the contact form ------------------------------------------------------------------------

  const PHONE = /^\+[1-9][\d\s().-]{5,22}$/;
  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/;

  function renderForm(message) {
    const fields = ((message.rich && message.rich.fields) || []).filter((f) => f && f.name);
    const formId = `bw-form-${message.id.replace(/[^\w-]/g, "")}`;
    const inputs = {};
    const errors = {};
    const status = el("p", { class: "bw-form-status", role: "alert" });
    const submit = el("button", { class: "bw-button", type: "submit", text: "Send my details" });
    const form = el("form", { class: "bw-form", novalidate: true, "aria-labelledby": `${formId}-title` },
      el("p", { class: "bw-form-title", id: `${formId}-title`, text: "Leave your details" }),
      el("p", { class: "bw-form-intro", text: message.text || "" }),
      fields.map((field) => {
        const id = `${formId}-${field.name}`;
        const attrs = {
          id, name: field.name, class: "bw-field-input", "aria-describedby": `${id}-error`,
          autocomplete: { name: "name", phone: "tel", email: "email" }[field.name] || "off",
        };
        const control = field.type === "textarea"
          ? el("textarea", { ...attrs, rows: "3", maxlength: "2000" })
          : el("input", {
            ...attrs, type: field.type || "text", maxlength: field.type === "email" ? "254" : "120",
            placeholder: field.name === "phone" ? "+44 20 7946 0958" : field.name === "email" ? "you@example.com" : null,
            inputmode: field.type === "tel" ? "tel" : null,
          });
        inputs[field.name] = control;
        errors[field.name] = el("span", { class: "bw-field-error", id: `${id}-error` });
        control.addEventListener("input", () => {
          if (control.getAttribute("aria-invalid") !== "true") return;
          control.removeAttribute("aria-invalid");
          errors[field.name].textContent = "";
          if (!Object.values(inputs).some((c) => c.getAttribute("aria-invalid") === "true")) status.textContent = "";
        });
        return el("div", { class: "bw-field" },
          el("label", { for: id, text: field.label || field.name }), control, errors[field.name]);
      }),
      el("p", { class: "bw-form-hint", text: "A phone number or an email address is enough." }),
      status, submit);
    const item = el("li", { class: "bw-card", "data-id": message.id, "data-kind": "contact_form" }, form);
    const live = () => state.formPending && item === state.activeForm;
    state.activeForm = item;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!live()) {
        status.textContent = "This form is no longer needed: a member of our team is with you.";
        return;
      }
      const values = {};
      for (const [name, control] of Object.entries(inputs)) values[name] = control.value.trim();
      if (!showErrors(validate(values), inputs, errors, status)) return;
      submit.disabled = true;
      submit.textContent = "Sending…";
      try {
        await call("POST", "/contact", values);
        state.formPending = false;
        state.activeForm = null;
        item.replaceChildren(el("div", { class: "bw-form-done", role: "status" }, icon("check"),
          el("div", {}, el("strong", { text: "Thanks, we have your details." }),
            el("p", { text: [values.name, values.phone, values.email].filter(Boolean).join(" · ") }))));
      } catch (error) {
        submit.disabled = false;
        submit.textContent = "Send my details";
        if (error.status === 400 && error.body.fields) showErrors(error.body.fields, inputs, errors, status);
        else if (error.status === 409) status.textContent = "This form is no longer needed: just keep chatting here.";
        else status.textContent = error.retryable ? "Couldn't send your details. Check your connection and try again."
          : error.message;
      }
    });
    return item;
  }

  /** The pending form is no longer wanted (the chat closed, or it was answered before a reload). */
  function retireForm() {
    state.formPending = false;
    const item = state.activeForm;
    state.activeForm = null;
    if (!item || !item.isConnected) return;
    const intro = item.querySelector(".bw-form-intro");
    item.replaceChildren(el("div", { class: "bw-form-done bw-form-retired" },
      el("p", { text: intro ? intro.textContent : "Contact form" }),
      el("p", { class: "bw-divider-sub", text: "This form is closed." })));
  }

  function validate(values) {
    const problems = {};
    if (values.phone && (!PHONE.test(values.phone) || !/^\d{8,15}$/.test(values.phone.replace(/\D/g, "")))) {
      problems.phone = "Use the international format, e.g. +44 20 7946 0958";
    }
    if (values.email && !EMAIL.test(values.email)) problems.email = "Enter an email address like you@example.com";
    if (!values.phone && !values.email) {
      problems.phone = "Leave a phone number or an email address";
      problems.email = "Leave a phone number or an email address";
    }
    return problems;
  }

  function showErrors(problems, inputs, errors, status) {
    let first = null;
    for (const [name, control] of Object.entries(inputs)) {
      const problem = problems[name] || "";
      errors[name].textContent = problem;
      if (problem) {
        control.setAttribute("aria-invalid", "true");
        first = first || control;
      } else {
        control.removeAttribute("aria-invalid");
      }
    }
    const valid = !first && !Object.keys(problems).length;
    status.textContent = valid ? "" : "Please check the highlighted fields.";
    if (first) first.focus();
    return valid;
  }

  // --- receiving -----------------------------------------------------------------------------------

  function receive(conversation, message) {
    const key = `${conversation}/${message.id}`;
    if (state.seen.has(key)) return;
    if (message.author === "customer" && adoptEcho(conversation, message)) return;
    state.seen.add(key);
    if (state.conversation && conversation !== state.conversation) {
      place(el("li", { class: "bw-divider bw-new" }, el("span", { text: "New conversation" })));
    }
    state.conversation = conversation;
    if (message.kind === "contact_form") state.formPending = true;
    const node = renderMessage(message);
    place(node);
    if (message.kind === "closed") retireForm();
    if (message.author !== "customer") {
      state.lastReplyAuthor = message.author === "system" ? state.lastReplyAuthor : message.author;
      hideTyping();
      if (!state.open) {
        state.unread += 1;
        showUnread();
      }
    }
    if (message.kind === "contact_form") scrollToTop(node);
    else scrollDown();
  }

  /** The server's copy of a message we are sending: attach it to the bubble already shown. */
  function adoptEcho(conversation, message) {
    const item = state.pending.find((p) => !p.id && p.text === message.text);
    if (!item) return false;
    acknowledge(item, conversation, message.id);
    return true;
  }

  function acknowledge(item, conversation, id) {
    const key = `${conversation}/${id}`;
    state.pending = state.pending.filter((p) => p !== item);
    state.outbox = state.outbox.filter((o) => o.client_id !== item.client_id);
    storage.set("outbox", state.outbox);
    if (item.id) return;
    item.id = id;
    if (state.seen.has(key)) {
      item.node.remove(); // already shown from the history
      return;
    }
    state.seen.add(key);
    if (state.conversation && conversation !== state.conversation) {
      place(el("li", { class: "bw-divider bw-new" }, el("span", { text: "New conversation" })));
    }
    state.conversation = conversation;
    item.node.dataset.id = id;
    item.node.classList.remove("bw-pending", "bw-failed");
    setStatus(item, "");
    place(item.node);
    scrollDown();
  }

  async function loadHistory() {
    if (!state.session) return;
    try {
      const data = await call("GET", "/messages");
      if (!data.conversation) return;
      for (const message of data.messages) receive(data.conversation.id, message);
      if (!data.conversation.form_pending && state.activeForm) retireForm();
      state.unread = 0;
      showUnread();
    } catch (error) {
      if (error.status === 401 || error.status === 403) await renewSession();
    }
  }

  function connect() {
    if (!state.session || state.source) return;
    const last = state.lastEventId ? `&last_event_id=${encodeURIComponent(state.lastEventId)}` : "";
    const source = new EventSource(`${API}/events?token=${encodeURIComponent(state.session.token)}${last}`);
    state.source = source;
    source.addEventListener("open", () => {
      state.retries = 0;
      connection.hidden = true;
      loadHistory();
    });
    source.addEventListener("message", (event) => {
      if (event.lastEventId) state.lastEventId = event.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      receive(data.conversation, data);
    });
    source.addEventListener("error", () => {
      if (state.source !== source) return;
      connection.textContent = "Reconnecting…";
      connection.hidden = false;
      if (source.readyState === EventSource.CLOSED) {
        disconnect();
        const delay = Math.min(30000, 1000 * 2 ** state.retries++);
        state.reconnectTimer = setTimeout(connect, delay);
      }
    });
  }

  function disconnect() {
    clearTimeout(state.reconnectTimer);
    if (state.source) state.source.close();
    state.source = null;
  }

  // --- sending -----------------------------------------------------------------------------------

  function setStatus(item, text, retry) {
    const line = item.node.querySelector(".bw-status");
    line.replaceChildren();
    if (text) line.append(text);
    if (retry) {
      line.append(" ", el("button", { class: "bw-retry", type: "button", text: "Retry", onclick: () => {
        item.tries = 0;
        deliver(item);
      } }));
    }
  }

  function queue(text, clientId) {
    const item = {
      client_id: clientId || uid(), text, id: null, tries: 0,
      node: el("li", { class: "bw-msg bw-from-me bw-pending" }, el("div", { class: "bw-bubble", text }),
        el("span", { class: "bw-status", "aria-live": "polite" })),
    };
    state.pending.push(item);
    if (!state.outbox.some((o) => o.client_id === item.client_id)) {
      state.outbox.push({ client_id: item.client_id, text });
      storage.set("outbox", state.outbox);
    }
    log.insertBefore(item.node, typing);
    scrollDown();
    deliver(item);
  }

  async function deliver(item) {
    if (item.id) return; // acknowledged meanwhile: its echo arrived on the event stream
    item.node.classList.remove("bw-failed");
    item.node.classList.add("bw-pending");
    setStatus(item, "Sending…");
    try {
      await ensureSession();
      // The same client_id on every attempt: the server records the message once however often we retry.
      const result = await call("POST", "/messages", { text: item.text, client_id: item.client_id });
      acknowledge(item, result.conversation, result.id);
      showTyping();
    } catch (error) {
      if (item.id) return;
      if ((error.status === 401 || error.status === 403) && !item.renewed) {
        item.renewed = true;
        await renewSession().catch(() => {});
        return deliver(item);
      }
      if (error.retryable && item.tries < RETRY_DELAYS.length) {
        setTimeout(() => deliver(item), RETRY_DELAYS[item.tries++]);
        return;
      }
      item.node.classList.remove("bw-pending");
      item.node.classList.add("bw-failed");
      if (error.retryable) setStatus(item, "Not sent.", true);
      else {
        setStatus(item, `Not sent: ${error.message}`);
        state.outbox = state.outbox.filter((o) => o.client_id !== item.client_id);
        storage.set("outbox", state.outbox);
      }
    }
  }

  function showTyping() {
    if (state.lastReplyAuthor === "agent") return;
    typing.hidden = false;
    scrollDown();
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, 6000);
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    typing.hidden = true;
  }

  function submit() {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    resize();
    queue(text);
  }

  // --- opening and closing -------------------------------------------------------------------------

  function showUnread() {
    badge.hidden = state.unread === 0 || state.open;
    badge.textContent = String(Math.min(state.unread, 9));
  }

  async function openPanel(focus = true) {
    state.open = true;
    sessionStorage.setItem(`${KEY}.open`, "1");
    panel.hidden = false;
    root.classList.add("bw-is-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat");
    state.unread = 0;
    showUnread();
    showHeader();
    scrollDown();
    if (focus) input.focus();
    try {
      await ensureSession();
    } catch {
      connection.textContent = "Can't reach the chat right now. We'll keep trying.";
      connection.hidden = false;
    }
  }

  function closePanel() {
    state.open = false;
    sessionStorage.removeItem(`${KEY}.open`);
    panel.hidden = true;
    root.classList.remove("bw-is-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat");
    launcher.focus();
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
  }

  launcher.addEventListener("click", () => (state.open ? closePanel() : openPanel()));
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePanel();
  });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", resize);
  window.addEventListener("online", () => {
    for (const item of state.pending) if (item.node.classList.contains("bw-failed")) deliver(item);
    if (!state.source) connect();
  });

  function mount() {
    document.body.appendChild(host);
    log.appendChild(typing);
    if (state.session) {
      showHeader();
      connect();
      // Messages typed before a reload and never acknowledged: resend them under their own client_id.
      loadHistory().then(() => state.outbox.slice().forEach((o) => queue(o.text, o.client_id)));
    }
    if (sessionStorage.getItem(`${KEY}.open`)) openPanel(false);
  }

  window.BatonWidget = { open: () => openPanel(), close: closePanel };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
