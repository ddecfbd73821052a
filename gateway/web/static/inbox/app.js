// The team inbox: sign-in, routing between views and pages, and live updates from /api/events.

import { api, ApiError, configure } from "./api.js";
import { hydrateIcons } from "./dom.js";
import { ConversationPane } from "./conversation.js";
import { bindPaging, listKey, renderCounts, renderList, renderNav, tickTimes } from "./list.js";
import { chime, desktop, titleBadge, toast, unlockAudio } from "./notify.js";
import {
  bindSettings, renderAiState, renderAssignment, renderContacts, renderMyPresence, renderSettings, renderTeam,
} from "./pages.js";
import { Live } from "./live.js";
import { bindReports, renderReports } from "./reports.js";
import {
  bindToolbox, loadCanned, loadLabels, renderCannedSettings, renderLabelSettings, renderNavLabels,
} from "./toolbox.js";
import { agentName, customerName, store, VIEWS } from "./store.js";

const $ = (id) => document.getElementById(id);
let pane = null;
let live = null;
let route = { page: "inbox", view: "mine", id: null };
const timers = {};

function debounce(name, fn, wait = 120) {
  clearTimeout(timers[name]);
  timers[name] = setTimeout(fn, wait);
}

function showError(error) {
  const message = error instanceof ApiError ? error.message : String(error && error.message || error);
  toast($("toasts"), { title: "That didn't work", body: message, tone: "error" });
}

// --- session ----------------------------------------------------------------------------------

function showSignIn(message = "") {
  if (live) live.close();
  store.me = null;
  $("boot").hidden = true;
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  document.title = "Sign in · Baton inbox";
  $("signin-token").focus();
}

async function signIn(event) {
  event.preventDefault();
  unlockAudio();
  const field = $("signin-token");
  const button = event.target.querySelector("button");
  if (!field.value.trim()) {
    $("signin-error").textContent = "Paste your agent token.";
    field.setAttribute("aria-invalid", "true");
    return;
  }
  button.disabled = true;
  try {
    const session = await api.signIn(field.value.trim());
    field.value = "";
    field.removeAttribute("aria-invalid");
    await start(session);
  } catch (error) {
    field.setAttribute("aria-invalid", "true");
    $("signin-error").textContent = error.status === 401
      ? "This token is unknown or has been revoked." : error.message;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await api.signOut();
  } catch (error) {
    showError(error);
    return;
  }
  location.hash = "";
  showSignIn("You have signed out.");
}

async function start(session) {
  configure({ token: session.csrf });
  store.me = session.agent;
  store.workspace = session.workspace;
  $("signin").hidden = true;
  $("boot").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = store.me.name;
  $("me-role").textContent = store.me.admin ? "Admin" : "Agent";
  $("me-avatar").textContent = store.me.name.slice(0, 1).toUpperCase();
  await Promise.all([loadTeam(), loadAi(), loadContacts(), loadAssignment(), loadLabels()]);
  renderMyPresence();
  $("workspace-name").textContent = store.workspaceName;
  if (live) live.close();
  live = new Live("/api/events", {
    name: `inbox:${store.workspace}:${store.me.id}`, onEvent, onOpen: refreshAll, onStatus: showLiveStatus,
    onEnded: sessionEnded,
  });
  live.start();
  navigate();
}

// --- data ---------------------------------------------------------------------------------------

async function loadTeam() {
  const team = await api.team();
  store.team = new Map(team.agents.map((agent) => [agent.id, agent]));
  store.me = team.me;
  store.workspaceName = team.workspace_name || team.workspace || store.workspace;
  store.channels = team.channels || [];
}

async function loadAssignment() {
  store.assignment = (await api.assignment()).assignment;
  renderAssignment();
}

/** The team again (a new agent, a presence or load that changed): everywhere it shows, without a reload. */
async function refreshTeam() {
  try {
    await loadTeam();
  } catch (error) {
    if (error.status !== 401) showError(error);
    return;
  }
  renderMyPresence();
  renderTeam();
  if (pane && pane.conversation) pane.render();
}

async function loadAi() {
  try {
    store.ai = (await api.aiAgent()).ai_agent;
  } catch (error) {
    if (error.status !== 404) throw error;
    store.ai = null;
  }
  renderAiState();
}

async function loadContacts() {
  const { contacts } = await api.contacts();
  for (const contact of contacts) store.contacts.set(String(contact.id), contact);
}

let listing = Promise.resolve();

/** The list's reads one after another: a refresh and a Load more that overlapped lost each other's rows. */
function queued(read) {
  listing = listing.then(read, read);
  return listing;
}

/** The view's first pages again, as many conversations as are shown (up to 200; what was paged in beyond them
 * stays, with its cursor), so that a refresh never takes away the rows an agent scrolled to. */
function refreshList() {
  return queued(readFirstPages);
}

const LIST_RETRY_MS = 5000;

async function readFirstPages() {
  const view = store.view;
  const key = listKey();
  const shown = store.conversations.length;
  clearTimeout(timers["list-retry"]);
  try {
    const limit = Math.min(200, Math.max(50, shown));
    const data = await api.conversations(view, { limit, label: store.label || "" });
    if (key !== listKey()) return;
    const fresh = new Set(data.conversations.map((c) => c.id));
    const beyond = shown > limit && data.next_cursor ? store.conversations.slice(limit).filter((c) => !fresh.has(c.id)) : [];
    store.conversations = data.conversations.concat(beyond);
    if (!beyond.length) store.nextCursor = data.next_cursor;
    store.listed = key;
    store.listError = "";
    store.counts = data.counts;
    renderCounts(data.counts);
    titleBadge(data.counts.waiting);
  } catch (error) {
    if (error.status === 401 || key !== listKey()) return;
    // Said where the list is, and tried again: not a toast every few seconds.
    store.listError = String(error.message || error).replace(/\.?$/, ".");
    timers["list-retry"] = setTimeout(refreshList, LIST_RETRY_MS);
  }
  renderList($("conversation-list"), $("list-empty"));
}

// --- search ---------------------------------------------------------------------------------------

/** The search box: results replace the view's list while it holds words; emptied, the view is back. */
function bindSearch() {
  const field = $("search-q");
  const changed = () => debounce("search", () => runSearch(field.value.trim(), $("search-status").value), 250);
  field.addEventListener("input", changed);
  $("search-status").addEventListener("change", changed);
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch(field.value.trim(), $("search-status").value);
  });
  field.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      field.value = "";
      runSearch("", "");
    }
  });
}

let searches = 0;

async function runSearch(query, status) {
  const ticket = ++searches;
  if (!query) {
    store.search = null;
    renderList($("conversation-list"), $("list-empty"));
    refreshList();
    return;
  }
  store.search = { query, status, results: [], nextCursor: null, error: "", loading: true };
  renderList($("conversation-list"), $("list-empty"));
  try {
    const data = await api.search(query, { status });
    if (ticket !== searches) return;
    Object.assign(store.search, { results: data.results, nextCursor: data.next_cursor, loading: false });
  } catch (error) {
    if (ticket !== searches) return;
    Object.assign(store.search, { error: error.message, loading: false });
  }
  renderList($("conversation-list"), $("list-empty"));
}

async function moreResults() {
  const search = store.search;
  if (!search.nextCursor || search.loading) return;
  search.loading = true;
  try {
    const data = await api.search(search.query, { status: search.status, cursor: search.nextCursor });
    if (search !== store.search) return;
    const known = new Set(search.results.map((r) => r.conversation.id));
    search.results = search.results.concat(data.results.filter((r) => !known.has(r.conversation.id)));
    search.nextCursor = data.next_cursor;
  } catch (error) {
    search.error = error.message;
  } finally {
    search.loading = false;
  }
  if (search === store.search) renderList($("conversation-list"), $("list-empty"));
}

/** The view's next page (Load more, or the list scrolled to its end). */
function loadMore() {
  if (store.search) return moreResults();
  if (!store.nextCursor || store.loadingMore) return listing;
  store.loadingMore = true;
  return queued(readNextPage);
}

async function readNextPage() {
  const view = store.view;
  const key = listKey();
  const cursor = store.nextCursor;
  try {
    if (!cursor) return;
    const data = await api.conversations(view, { cursor, label: store.label || "" });
    if (key !== listKey()) return;
    const known = new Set(store.conversations.map((c) => c.id));
    store.conversations = store.conversations.concat(data.conversations.filter((c) => !known.has(c.id)));
    store.nextCursor = data.next_cursor;
    store.counts = data.counts;
    renderCounts(data.counts);
    renderList($("conversation-list"), $("list-empty"));
  } catch (error) {
    if (error.status !== 401) showError(error);
  } finally {
    store.loadingMore = false;
  }
}

function refreshAll() {
  refreshTeam(); // the stream's opening brought me online (before its first event): presence and load as they are
  refreshList();
  if (pane && store.openId) pane.refresh();
  if (route.page === "contacts") renderContacts().catch(showError);
}

// --- live events and notifications ------------------------------------------------------------

function onEvent(event) {
  if (event.type === "stream.reset") { // the stream fell behind further than the events kept: reload what is shown
    refreshAll();
    loadAi();
    return;
  }
  if (event.type === "conversation.handover" && mayTake(event.team)) {
    notifyWaiting(event.conversation, event.reason, event.customer);
  }
  if (event.type === "agent.created" || event.type === "agent.updated") debounce("team", refreshTeam);
  if (event.type === "conversation.assigned" && event.owner === "none" && event.actor !== `agent:${store.me.id}`) {
    notifyWaiting(event.conversation, event.reason || "Unassigned");
  }
  if (event.type === "contact.captured") notifyContact(event);
  if (event.type === "conversation.sla_breached") notifyOverdue(event);
  if (event.type === "conversation.assigned") notifyAssigned(event);
  if (event.type === "agent.presence") {
    const agent = store.team.get(event.agent);
    if (agent) {
      agent.presence = event.status;
      renderTeam();
      if (event.agent === store.me.id) renderMyPresence();
    } else {
      debounce("team", refreshTeam); // someone new joined the team
    }
  }
  if (event.type === "assignment.updated") loadAssignment().catch(showError);
  if (event.type === "conversation.labeled" || event.type === "label.deleted") debounce("labels", () => loadLabels().catch(showError), 300);
  if (event.type === "conversation.assigned" || event.type === "conversation.closed") debounce("team", refreshTeam, 500);
  const named = (event.owner || "").startsWith("agent:") ? event.owner.slice(6) : "";
  if (named && !store.team.has(named)) debounce("team", refreshTeam);
  if (event.type === "note.mention" && (event.agents || []).includes(store.me.id)) notifyMention(event);
  if (event.type === "ai_agent.updated" || event.type === "ai_agent.model") loadAi().then(() => pane && pane.conversation && pane.render());
  if (event.conversation) {
    debounce("list", refreshList);
    if (event.conversation === store.openId) debounce("conversation", () => pane.refresh(), 60);
  }
}

/** A chat of this team is mine to take: a member's, or any admin's ("" is the whole workspace's). */
function mayTake(team) {
  return !team || store.me.admin || (store.me.teams || []).includes(team);
}

function known(id) {
  return store.conversations.find((c) => c.id === id);
}

/** Who the customer is, from the current list or else from the API (a notification names people). */
async function customerOf(id, fallback = "") {
  let conversation = known(id);
  if (!conversation) {
    try {
      conversation = (await api.conversation(id)).conversation;
    } catch {
      conversation = null;
    }
  }
  if (conversation) return customerName(conversation);
  return fallback || `Conversation #${id}`;
}

async function notifyWaiting(id, reason, customer = "") {
  const who = await customerOf(id, customer);
  const open = () => { location.hash = `#/inbox/waiting/${id}`; };
  toast($("toasts"), {
    title: `${who} needs a human`, body: reason || "The AI handed the conversation over.", tone: "handover",
    action: { label: "Open", run: open }, timeout: 15000,
  });
  chime();
  desktop(`${who} needs a human`, reason || "", `handover-${id}`, open);
}

/** A chat became mine without my doing (automatic assignment, a colleague, an admin), or an admin took mine. */
async function notifyAssigned(event) {
  const mine = `agent:${store.me.id}`;
  if (event.actor === mine) return;
  const by = event.actor === "auto" ? "Assigned to you automatically"
    : `Assigned to you by ${agentName((event.actor || "").replace(/^agent:/, ""))}`;
  if (event.owner === mine) {
    const who = await customerOf(event.conversation);
    const open = () => { location.hash = `#/inbox/mine/${event.conversation}`; };
    toast($("toasts"), { title: `${who} is yours now`, body: by, tone: "handover", action: { label: "Open", run: open },
      timeout: 15000 });
    chime();
    desktop(`${who} is yours now`, by, `assigned-${event.conversation}`, open);
  } else if (event.previous === mine && event.owner !== "none" && event.owner !== "ai") {
    const who = await customerOf(event.conversation);
    toast($("toasts"), { title: `${agentName(event.owner.slice(6))} took over ${who}`,
      body: "The conversation is no longer yours.", timeout: 15000 });
  }
}

/** A response target was missed: told to the admins, to whoever had the chat, and (a waiting chat) to its team. */
async function notifyOverdue(event) {
  const mine = event.owner === `agent:${store.me.id}`;
  if (!mine && !store.me.admin && !(event.owner === "none" && mayTake(event.team))) return;
  const who = await customerOf(event.conversation);
  const open = () => { location.hash = `#/inbox/overdue/${event.conversation}`; };
  const owner = event.owner.startsWith("agent:") ? agentName(event.owner.slice(6)) : "nobody";
  const body = mine ? "You missed the response target: the chat may go to someone else."
    : `The response target was missed (${owner} had it).`;
  toast($("toasts"), { title: `${who} waits past the target`, body, tone: "handover", action: { label: "Open", run: open },
    timeout: 15000 });
  chime();
  desktop(`${who} waits past the target`, body, `overdue-${event.conversation}`, open);
}

async function notifyMention(event) {
  const who = await customerOf(event.conversation);
  const open = () => { location.hash = `#/inbox/all/${event.conversation}`; };
  toast($("toasts"), {
    title: `${event.agent_name || "A teammate"} mentioned you`, body: `${who}: ${event.text || ""}`, tone: "handover",
    action: { label: "Open", run: open }, timeout: 15000,
  });
  chime();
  desktop(`${event.agent_name || "A teammate"} mentioned you`, event.text || "", `mention-${event.message}`, open);
}

function notifyContact(event) {
  const who = event.name || "A customer";
  const reach = [event.phone, event.email].filter(Boolean).join(" · ");
  const open = () => { location.hash = `#/inbox/all/${event.conversation}`; };
  toast($("toasts"), {
    title: `${who} left their contact details`, body: reach, tone: "success",
    action: { label: "Open", run: open }, timeout: 15000,
  });
  chime();
  desktop(`${who} left their contact details`, reach, `contact-${event.contact}`, open);
  loadContacts().then(() => refreshList());
}

/** The server ended the session (the agent was revoked, the session expired): sign in again, no retrying. */
function sessionEnded(reason) {
  const why = { revoked: "Your access to this workspace was revoked.", expired: "Your session has expired." }[reason]
    || reason || "Your session has ended.";
  showSignIn(`${why.replace(/\.?$/, ".")} Sign in again to continue.`);
}

/** Where the live updates stand; when they cannot open, why, and that they are being tried again. */
function showLiveStatus(state, detail) {
  const status = $("live-status");
  status.dataset.state = state;
  let text = {
    live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline, retrying…",
  }[state] || "Reconnecting…";
  if (state === "error") {
    const when = detail && detail.retryIn ? `retrying in ${detail.retryIn} s` : "still trying";
    text = `No live updates: ${(detail && detail.reason) || "the server is unreachable"}; ${when}…`;
  }
  status.querySelector(".live-status-text").textContent = text;
  status.title = text;
}

// --- routing ------------------------------------------------------------------------------------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "settings" || parts[0] === "contacts" || parts[0] === "reports") return { page: parts[0] };
  if (parts[0] === "labels" && parts[1]) {
    return { page: "inbox", view: "all", label: parts[1], id: parts[2] || null, message: parts[3] || null };
  }
  const view = VIEWS[parts[1]] ? parts[1] : "mine";
  return { page: "inbox", view, id: parts[2] || null, message: parts[3] || null };
}

function navigate() {
  if (!store.me) return;
  route = parseRoute();
  renderNavLabels(route);
  renderNav(route);
  $("inbox-page").hidden = route.page !== "inbox";
  $("settings-page").hidden = route.page !== "settings";
  $("contacts-page").hidden = route.page !== "contacts";
  $("reports-page").hidden = route.page !== "reports";
  if (route.page === "reports") {
    renderReports().catch(showError);
    return;
  }
  if (route.page === "settings") {
    renderSettings();
    renderLabelSettings();
    renderCannedSettings();
    loadCanned().then(renderCannedSettings).catch(showError);
    return;
  }
  if (route.page === "contacts") {
    renderContacts().catch(showError);
    return;
  }
  const before = listKey();
  store.view = route.view;
  store.label = route.label || null;
  const viewChanged = listKey() !== before;
  if (viewChanged && store.search) { // another view chosen: its list, not the search's results
    store.search = null;
    $("search-q").value = "";
  }
  if (viewChanged) {
    store.conversations = [];
    store.nextCursor = null;
    store.listed = null;
    renderList($("conversation-list"), $("list-empty"));
  }
  pane.open(route.id, route.message).then(() => renderList($("conversation-list"), $("list-empty")));
  refreshList();
}

// --- boot ---------------------------------------------------------------------------------------

async function boot() {
  hydrateIcons();
  configure({
    unauthorized: () => sessionEnded(""),
    rateLimited: (seconds) => toast($("toasts"), {
      title: "Too many requests", body: `The server asked us to slow down. Trying again in ${seconds} s.`,
    }),
  });
  pane = new ConversationPane({ onError: showError, onChanged: refreshList });
  bindPaging($("conversation-list"), loadMore);
  bindSearch();
  bindToolbox({ onError: showError, onLabelsChanged: () => { refreshList(); if (pane.conversation) pane.refresh(); } });
  bindSettings({ onError: showError, onAiChanged: () => pane.conversation && pane.render() });
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("contacts-more").addEventListener("click", () => renderContacts(true).catch(showError));
  bindReports(showError);
  window.addEventListener("hashchange", navigate);
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });
  setInterval(() => tickTimes(), 15000);
  try {
    await start(await api.session());
  } catch (error) {
    showSignIn(error.status === 401 || error.status === undefined ? "" : error.message);
  }
}

boot();
