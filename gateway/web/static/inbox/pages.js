// The workspace pages: Settings (publish the AI agent, notifications, the team) and Contacts.

import { api } from "./api.js";
import { ago, avatar, fill, h } from "./dom.js";
import { askDesktopPermission, chime, desktopPermission, setSoundEnabled, soundEnabled, unlockAudio } from "./notify.js";
import { identityLabel, store } from "./store.js";

const $ = (id) => document.getElementById(id);

/** The AI agent's state wherever it shows: sidebar, banner, settings. */
export function renderAiState() {
  const ai = store.ai;
  const published = Boolean(ai && ai.published);
  const status = $("ai-status");
  status.dataset.state = !ai ? "none" : published ? "live" : "off";
  $("ai-status-text").textContent = !ai ? "No AI agent" : `${ai.name} · ${published ? "Published" : "Unpublished"}`;
  $("ai-banner").hidden = !ai || published;
  if (ai) {
    $("ai-banner-text").textContent =
      `${ai.name}, the AI agent, is unpublished: every new conversation waits for a human.`;
  }
  renderModelState(ai);
  $("ai-name").textContent = ai ? ai.name : "none configured";
  $("ai-model").textContent = ai ? ai.model : "";
  const toggle = $("ai-toggle");
  toggle.setAttribute("aria-checked", String(published));
  toggle.disabled = !ai || !store.me.admin;
  $("ai-toggle-label").textContent = published ? "Published" : "Unpublished";
  $("ai-admin-note").hidden = store.me.admin;
}

/** The model's circuit breaker: while it is open, the AI asks nothing and every question goes to a person. */
function renderModelState(ai) {
  const status = ai && ai.model_status;
  const failing = Boolean(status && status.state !== "closed");
  $("model-banner").hidden = !failing;
  if (!failing) return;
  const retry = status.state === "open" && status.until
    ? `tried again at ${new Date(status.until).toLocaleTimeString()}` : "being tried again now";
  $("model-banner-text").textContent = `${ai.name}'s model (${status.model}) failed ${status.failures} times in a row `
    + `(${status.last_error}): new questions go straight to a human. It is ${retry}.`;
}

export function renderSettings() {
  $("settings-workspace").textContent = store.workspaceName === store.workspace
    ? `Workspace ${store.workspace}` : `${store.workspaceName} · workspace ${store.workspace}`;
  renderAiState();
  renderNotificationState();
  $("sound-enabled").checked = soundEnabled();
  renderAssignment();
  renderTemplates();
  renderTeam();
}

/** Each WhatsApp channel whose provider lists its templates: how many there are, and (admins) a refresh. */
export function renderTemplates() {
  const channels = (store.channels || []).filter((c) => c.templates);
  $("templates-card").hidden = !channels.length;
  $("templates-admin-note").hidden = !!(store.me && store.me.admin);
  fill($("templates-list"), channels.map((channel) => {
    const state = h("span", { class: "muted small templates-state", text: "" });
    const show = (answer) => {
      const keys = answer.templates.map((t) => t.key);
      state.textContent = `${keys.length} template${keys.length === 1 ? "" : "s"}${keys.length ? `: ${keys.join(", ")}` : ""}`
        + (answer.error ? ` (${answer.error})` : "");
    };
    api.templates(channel.name).then(show).catch(() => { state.textContent = "Could not list the templates"; });
    const button = h("button", { class: "btn btn-small", type: "button", hidden: !(store.me && store.me.admin),
      onclick: async () => {
        button.disabled = true;
        state.textContent = "Asking the provider…";
        try {
          show(await api.refreshTemplates(channel.name));
        } catch (error) {
          state.textContent = error.message || "The refresh failed";
        } finally {
          button.disabled = false;
        }
      } }, "Refresh from provider");
    return h("li", { class: "team-row", dataset: { channel: channel.name } },
      h("span", { class: "team-name", text: `${channel.name} (${channel.type})` }), state, button);
  }));
}

const PRESENCE_LABELS = { online: "Online", away: "Away", offline: "Offline" };

/** The team with each agent's presence and load: re-rendered on every agent.presence event. */
export function renderTeam() {
  // A team field an admin is editing survives the list's re-render (a presence change, a colleague's chat).
  const editing = new Map([...document.querySelectorAll("#team-list [data-teams-of] input")]
    .filter((input) => input === document.activeElement || input.value !== input.defaultValue)
    .map((input) => [input.form.dataset.teamsOf, { value: input.value, focused: input === document.activeElement }]));
  fill($("team-list"), [...store.team.values()].map((agent) =>
    h("li", { class: "team-row", dataset: { agent: agent.id } }, avatar(agent.name, agent.id, "avatar-sm"),
      h("div", { class: "team-text" }, h("strong", { text: agent.name }), h("span", { class: "muted", text: `@${agent.id}` })),
      h("span", { class: "presence-chip", dataset: { presence: agent.presence || "offline" } },
        h("span", { class: "presence-dot", "aria-hidden": "true" }),
        h("span", { text: PRESENCE_LABELS[agent.presence] || "Offline" })),
      h("span", { class: "muted small", text: `${agent.open || 0} open` }),
      agent.admin ? h("span", { class: "chip", text: "Admin" }) : h("span", { class: "chip chip-quiet", text: "Agent" }),
      agent.id === store.me.id ? h("span", { class: "chip chip-mine", text: "You" }) : null,
      teamsOf(agent))));
  for (const [id, { value, focused }] of editing) {
    const input = document.querySelector(`#team-list [data-teams-of="${CSS.escape(id)}"] input`);
    if (!input) continue;
    input.value = value;
    if (focused) input.focus();
  }
}

/** The agent's teams: chips, or for an admin a field to change them (comma-separated, saved on Enter or Save). */
function teamsOf(agent) {
  const teams = agent.teams || [];
  if (!store.me.admin) {
    return h("span", { class: "team-teams" }, teams.map((team) => h("span", { class: "chip chip-quiet", text: team })));
  }
  return h("form", { class: "team-teams team-teams-form", dataset: { teamsOf: agent.id } },
    h("input", { type: "text", name: "teams", value: teams.join(", "), placeholder: "no team",
      "aria-label": `Teams of ${agent.name}`, maxlength: "900" }),
    h("button", { class: "btn btn-small", type: "submit", text: "Save" }));
}

/** The signed-in agent's own presence in the sidebar. */
export function renderMyPresence() {
  const me = store.team.get(store.me.id);
  const status = (me && me.presence) || store.me.presence || "offline";
  $("presence").value = status;
  $("presence").closest(".presence-pick").dataset.presence = status;
}

export function renderAssignment() {
  const rule = store.assignment;
  if (!rule) return;
  $("assignment-mode").value = rule.mode;
  $("assignment-capacity").value = String(rule.capacity);
  const source = rule.source === "settings" ? "set here (it wins until config.yaml's value changes)" : "from config.yaml";
  $("assignment-state").textContent = `In force: ${rule.mode.replace("_", " ")}, capacity ${rule.capacity}, ${source}.`
    + (rule.queued ? ` ${rule.queued} chat(s) wait for a free agent.` : "");
  for (const id of ["assignment-mode", "assignment-capacity", "assignment-save", "assignment-reset"]) {
    $(id).disabled = !store.me.admin;
  }
  $("assignment-admin-note").hidden = store.me.admin;
}

function renderNotificationState() {
  const permission = desktopPermission();
  $("notify-enable").disabled = permission !== "default";
  $("notify-state").textContent = {
    granted: "Desktop notifications are on.",
    denied: "Desktop notifications are blocked in this browser's site settings.",
    default: "Desktop notifications are off.",
    unsupported: "This browser has no desktop notifications.",
  }[permission];
}

export function bindSettings({ onError, onAiChanged }) {
  $("presence").addEventListener("change", async (event) => {
    const status = event.target.value;
    try {
      await api.setPresence(status);
      const me = store.team.get(store.me.id);
      if (me) me.presence = status;
      store.me.presence = status;
    } catch (error) {
      onError(error);
    }
    renderMyPresence();
  });
  $("assignment-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      store.assignment = (await api.setAssignment($("assignment-mode").value,
        Number($("assignment-capacity").value))).assignment;
    } catch (error) {
      onError(error);
    }
    renderAssignment();
  });
  $("team-list").addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-teams-of]");
    if (!form) return;
    event.preventDefault();
    const teams = form.elements.teams.value.split(/[\s,]+/).map((team) => team.trim().toLowerCase()).filter(Boolean);
    try {
      const { agent } = await api.setTeams(form.dataset.teamsOf, teams);
      form.elements.teams.defaultValue = agent.teams.join(", ");
      form.elements.teams.value = form.elements.teams.defaultValue;
      form.elements.teams.blur();
      const known = store.team.get(agent.id);
      if (known) known.teams = agent.teams;
      if (agent.id === store.me.id) store.me.teams = agent.teams;
    } catch (error) {
      onError(error);
    }
    renderTeam();
  });
  $("assignment-reset").addEventListener("click", async () => {
    try {
      store.assignment = (await api.setAssignment(null)).assignment;
    } catch (error) {
      onError(error);
    }
    renderAssignment();
  });
  $("ai-toggle").addEventListener("click", async () => {
    const toggle = $("ai-toggle");
    const next = toggle.getAttribute("aria-checked") !== "true";
    toggle.disabled = true;
    try {
      const { ai_agent: ai } = await api.setPublished(next);
      store.ai = ai;
      onAiChanged();
    } catch (error) {
      onError(error);
    } finally {
      renderAiState();
    }
  });
  $("notify-enable").addEventListener("click", async () => {
    await askDesktopPermission();
    renderNotificationState();
  });
  $("sound-enabled").addEventListener("change", (event) => setSoundEnabled(event.target.checked));
  $("sound-test").addEventListener("click", () => {
    unlockAudio();
    chime();
  });
}

/** A contact's row becomes a form: name, phone and email, saved with PATCH (an empty field clears it). */
function editContact(row, contact) {
  const field = (name, label, type = "text") => h("input", { class: "cell-input", name, type, value: contact[name] || "",
    "aria-label": label });
  const inputs = { name: field("name", "Name"), phone: field("phone", "Phone", "tel"), email: field("email", "Email", "email") };
  const problem = h("p", { class: "field-error", role: "alert" });
  const cells = row.children;
  fill(cells[0], inputs.name, problem);
  fill(cells[1], inputs.phone);
  fill(cells[2], inputs.email);
  fill(cells[6],
    h("button", { type: "button", class: "btn btn-small btn-primary", onclick: async () => {
      const invalid = Object.entries(inputs).filter(([, input]) => !input.checkValidity());
      if (invalid.length) { // said here, before the server would refuse it
        problem.textContent = invalid.map(([name, input]) => `${name}: ${input.validationMessage}`).join("; ");
        return;
      }
      const changes = {};
      for (const [name, input] of Object.entries(inputs)) {
        if (input.value.trim() !== (contact[name] || "")) changes[name] = input.value.trim();
      }
      if (!Object.keys(changes).length) { renderContacts().catch(() => {}); return; }
      try {
        const { contact: saved } = await api.editContact(contact.id, changes);
        store.contacts.set(String(saved.id), saved);
        await renderContacts();
      } catch (error) {
        const fields = (error.body && error.body.fields) || {};
        problem.textContent = Object.entries(fields).map(([name, why]) => `${name}: ${why}`).join("; ") || error.message;
      }
    } }, "Save"),
    h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => renderContacts().catch(() => {}) },
      "Cancel"));
  inputs.name.focus();
}

let contactRows = [];
let contactsCursor = null;

/** Contacts, a page at a time (`more`: the next page after those shown). */
export async function renderContacts(more = false) {
  const { contacts, next_cursor: next, count } = await api.contacts(more ? contactsCursor || "" : "");
  for (const contact of contacts) store.contacts.set(String(contact.id), contact);
  const shown = new Set(more ? contactRows.map((c) => c.id) : []);
  contactRows = (more ? contactRows : []).concat(contacts.filter((c) => !shown.has(c.id)));
  contactsCursor = next;
  $("contacts-count").textContent = `${count} contact${count === 1 ? "" : "s"}`;
  $("contacts-more").hidden = !next;
  fill($("contacts-body"), contactRows.map((contact) => {
    const latest = (contact.conversations || []).slice(-1)[0];
    const name = contact.name || "Unnamed visitor";
    return h("tr", { dataset: { contact: contact.id } },
      h("td", {}, h("span", { class: "cell-person" }, avatar(name, contact.id, "avatar-sm"), h("span", { text: name }))),
      h("td", { text: contact.phone || "—" }),
      h("td", { text: contact.email || "—" }),
      h("td", { class: "cell-message", text: contact.message || "—" }),
      h("td", { text: (contact.identities || []).map(identityLabel).join(", ") }),
      h("td", { text: contact.updated_at ? ago(Number(contact.updated_at)) : "" }),
      h("td", { class: "cell-actions" },
        h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": `Edit ${name}`,
          onclick: (event) => editContact(event.target.closest("tr"), contact) }, "Edit"),
        latest ? h("a", { class: "btn btn-small", href: `#/inbox/all/${latest}` }, "Open conversation") : null));
  }));
  $("contacts-empty").hidden = contactRows.length > 0;
}
