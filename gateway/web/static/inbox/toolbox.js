// Labels and canned replies in the inbox: the labels' views in the sidebar, a conversation's labels, the "/" menu
// of canned replies in the composer, and Settings' cards where admins define both.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { customerName, store } from "./store.js";

const $ = (id) => document.getElementById(id);
let onError = () => {};
let onLabelsChanged = () => {};

export async function loadLabels() {
  store.labels = (await api.labels()).labels;
  renderNavLabels();
  if (!$("settings-page").hidden) renderLabelSettings();
}

export async function loadCanned() {
  store.canned = (await api.canned()).canned_replies;
  if (!$("settings-page").hidden) renderCannedSettings();
}

/** The sidebar's label views, each with how many conversations carry it. */
export function renderNavLabels(route = null) {
  const current = route ? route.label : store.label;
  fill($("nav-labels"), store.labels.map((label) => h("a", {
    class: "nav-item", href: `#/labels/${label.name}`, dataset: { label: label.name },
    "aria-current": current === label.name ? "page" : null,
  }, h("span", { class: `label-dot label-${label.color}`, "aria-hidden": "true" }),
  h("span", { class: "nav-label", text: label.name }),
  h("span", { class: "nav-count", text: String(label.conversations ?? 0) }))));
  $("nav-labels-section").hidden = !store.labels.length;
}

/** The open conversation's labels, each removable, and the labels it can still get. */
export function renderConversationLabels(conversation, changed) {
  const mine = conversation.labels || [];
  const byName = new Map(store.labels.map((label) => [label.name, label]));
  fill($("conv-labels"), mine.map((name) => h("span", {
    class: `chip chip-label label-${(byName.get(name) || {}).color || "grey"}`, dataset: { label: name } },
  name, h("button", { type: "button", class: "chip-x", "aria-label": `Remove label ${name}`, title: "Remove",
    onclick: () => change(api.unlabel(conversation.id, name), changed) }, "×"))));
  const select = $("act-label");
  const free = store.labels.filter((label) => !mine.includes(label.name));
  fill(select, h("option", { value: "" }, free.length ? "Add label…" : "No labels to add"),
    ...free.map((label) => h("option", { value: label.name }, label.name)));
  select.disabled = !free.length;
  select.onchange = () => {
    const name = select.value;
    select.value = "";
    if (name) change(api.label(conversation.id, name), changed);
  };
}

async function change(request, changed) {
  try {
    await request;
    changed();
    loadLabels().catch(onError);
  } catch (error) {
    onError(error);
  }
}

// --- canned replies in the composer -----------------------------------------------------------------------------

/** The text with its placeholders filled in for this conversation and agent. */
export function fillPlaceholders(text, conversation) {
  const name = conversation ? customerName(conversation) : "";
  // A name the customer gave (contact details, their WhatsApp profile), not "Visitor 3f2a1b": else "there".
  const contact = conversation && typeof conversation.contact === "object" ? conversation.contact : null;
  const given = (contact && contact.name) || (conversation && conversation.profile_name) || "";
  const values = {
    "customer.name": given || name, "customer.first_name": given.split(/\s+/)[0] || "there",
    "agent.name": store.me ? store.me.name : "",
  };
  return text.replace(/\{\{\s*([a-z_.]+)\s*\}\}/g, (whole, key) => (key in values ? values[key] : whole));
}

/** "/shortcut" at the start of the composer opens the menu of canned replies whose shortcut begins so; Enter, Tab
 * or a click puts the reply in the composer (placeholders filled), Escape closes it. */
export function bindCannedMenu(textarea, conversation) {
  const menu = $("canned-menu");
  let shown = [];
  let active = 0;
  const close = () => { menu.hidden = true; shown = []; };
  const choose = (reply) => {
    textarea.value = fillPlaceholders(reply.text, conversation());
    close();
    textarea.focus();
    textarea.dispatchEvent(new Event("input"));
  };
  const render = () => {
    fill(menu, shown.map((reply, n) => h("li", {
      role: "option", class: `canned-item${n === active ? " is-active" : ""}`, "aria-selected": String(n === active),
      dataset: { shortcut: reply.shortcut }, onmousedown: (event) => { event.preventDefault(); choose(reply); },
    }, h("strong", { text: `/${reply.shortcut}` }), h("span", { class: "muted", text: reply.text }))));
    menu.hidden = !shown.length;
  };
  textarea.addEventListener("input", () => {
    const typed = /^\/([a-z0-9_-]*)$/.exec(textarea.value);
    if (!typed) return close();
    if (!store.cannedLoaded) {
      store.cannedLoaded = true;
      loadCanned().then(() => textarea.dispatchEvent(new Event("input"))).catch(onError);
    }
    shown = (store.canned || []).filter((reply) => reply.shortcut.startsWith(typed[1])).slice(0, 8);
    active = 0;
    return render();
  });
  textarea.addEventListener("keydown", (event) => {
    if (menu.hidden || !shown.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      choose(shown[active]);
    } else if (event.key === "Escape") {
      close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  });
  textarea.addEventListener("blur", close);
}

// --- Settings -----------------------------------------------------------------------------------------------------

export function renderLabelSettings() {
  fill($("labels-list"), store.labels.map((label) => h("li", { class: "team-row", dataset: { label: label.name } },
    h("span", { class: `label-dot label-${label.color}`, "aria-hidden": "true" }),
    h("div", { class: "team-text" }, h("strong", { text: label.name }),
      h("span", { class: "muted", text: `${label.conversations} conversation${label.conversations === 1 ? "" : "s"}` })),
    store.me.admin ? h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": `Delete label ${label.name}`,
      onclick: () => removeLabel(label.name) }, "Delete") : null)));
  $("label-form").hidden = !store.me.admin;
}

export function renderCannedSettings() {
  fill($("canned-list"), (store.canned || []).map((reply) => h("li", { class: "team-row", dataset: { shortcut: reply.shortcut } },
    h("div", { class: "team-text" }, h("strong", { text: `/${reply.shortcut}` }), h("span", { class: "muted", text: reply.text })),
    store.me.admin ? h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": `Delete /${reply.shortcut}`,
      onclick: () => removeCanned(reply.shortcut) }, "Delete") : null)));
  $("canned-form").hidden = !store.me.admin;
}

async function removeLabel(name) {
  if (!window.confirm(`Delete the label “${name}”? It comes off every conversation.`)) return;
  try {
    await api.deleteLabel(name);
    await loadLabels();
    renderLabelSettings();
    onLabelsChanged();
  } catch (error) {
    onError(error);
  }
}

async function removeCanned(shortcut) {
  try {
    await api.deleteCanned(shortcut);
    await loadCanned();
    renderCannedSettings();
  } catch (error) {
    onError(error);
  }
}

export function bindToolbox(handlers) {
  onError = handlers.onError;
  onLabelsChanged = handlers.onLabelsChanged;
  $("label-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.defineLabel($("label-name").value.trim(), $("label-color").value);
      $("label-name").value = "";
      await loadLabels();
      renderLabelSettings();
    } catch (error) {
      onError(error);
    }
  });
  $("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.saveCanned($("canned-shortcut").value.trim().replace(/^\//, ""), $("canned-text").value);
      $("canned-shortcut").value = "";
      $("canned-text").value = "";
      await loadCanned();
      renderCannedSettings();
    } catch (error) {
      onError(error);
    }
  });
}

// --- snooze -------------------------------------------------------------------------------------------------------

/** When a snooze would end, from the choice in the menu (null: at the customer's next message). */
function wakeAt(choice) {
  const at = new Date();
  if (choice === "hour") return Date.now() + 3600 * 1000;
  if (choice === "tomorrow") {
    at.setDate(at.getDate() + 1);
    at.setHours(9, 0, 0, 0);
    return at.getTime();
  }
  if (choice === "week") {
    at.setDate(at.getDate() + ((8 - at.getDay()) % 7 || 7)); // next Monday
    at.setHours(9, 0, 0, 0);
    return at.getTime();
  }
  return null;
}

/** Snooze (an agent's or waiting conversation) or wake it (a snoozed one). */
export function renderSnooze(conversation, changed) {
  const select = $("act-snooze");
  const wake = $("act-unsnooze");
  const snoozed = Boolean(conversation.snoozed_until);
  const possible = conversation.status === "open" && conversation.owner !== "ai";
  fill(select, h("option", { value: "" }, "Snooze…"), h("option", { value: "next" }, "Until they reply"),
    h("option", { value: "hour" }, "For an hour"), h("option", { value: "tomorrow" }, "Until tomorrow 9:00"),
    h("option", { value: "week" }, "Until Monday 9:00"));
  select.hidden = !possible || snoozed;
  wake.hidden = !possible || !snoozed;
  const until = conversation.snoozed_until === "next" ? "until the customer replies"
    : snoozed ? `until ${new Date(Number(conversation.snoozed_until)).toLocaleString()}` : "";
  wake.title = snoozed ? `Snoozed ${until}` : "";
  select.onchange = () => {
    const choice = select.value;
    select.value = "";
    if (choice) change(api.snooze(conversation.id, wakeAt(choice)), changed);
  };
  wake.onclick = () => change(api.unsnooze(conversation.id), changed);
}
