// The agent API over the session cookie; every state-changing call carries the session's CSRF value.
// A 429 (rate limited) is said once, through onRateLimited, and the request tried once more after the
// server's Retry-After.

import { retryAfterSeconds } from "./stream.js";

const RATE_LIMIT_DEFAULT = 5; // s, when a 429 does not say how long
// A request unanswered after this long fails with a reason instead of leaving the page waiting for ever.
const TIMEOUT_MS = 20000;

let csrf = "";
let onUnauthorized = () => {};
let onRateLimited = () => {};

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super(body && body.error ? body.error : `request failed (${status})`);
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter; // seconds, for a 429
  }
}

export function configure({ token, unauthorized, rateLimited }) {
  if (token !== undefined) csrf = token;
  if (unauthorized) onUnauthorized = unauthorized;
  if (rateLimited) onRateLimited = rateLimited;
}

export async function request(path, options = {}) {
  try {
    return await attempt(path, options);
  } catch (error) {
    if (error.status !== 429) throw error;
    const seconds = error.retryAfter ?? RATE_LIMIT_DEFAULT;
    onRateLimited(seconds);
    await new Promise((resolve) => { setTimeout(resolve, seconds * 1000); });
    return attempt(path, options);
  }
}

async function attempt(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  let data;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store", signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    data = await response.json().catch(() => ({}));
  } catch {
    throw new ApiError(0, { error: controller.signal.aborted
      ? `The server did not answer in ${TIMEOUT_MS / 1000} s. Try again.`
      : "Can't reach the server. Check your connection." });
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 401 && !path.startsWith("/inbox/session")) onUnauthorized();
  if (!response.ok) throw new ApiError(response.status, data, retryAfterSeconds(response.headers.get("retry-after")));
  return data;
}

/** A new idempotency key: a reply sent again with it is recorded once. */
export function newClientId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `r-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export const api = {
  session: () => request("/inbox/session"),
  signIn: (token) => request("/inbox/session", { method: "POST", body: { token } }),
  signOut: () => request("/inbox/session/delete", { method: "POST", body: {} }),
  team: () => request("/api/team"),
  setTeams: (agent, teams) => request(`/api/agents/${encodeURIComponent(agent)}/teams`,
    { method: "PUT", body: { teams } }),
  setPresence: (status) => request("/api/me/presence", { method: "PUT", body: { status } }),
  assignment: () => request("/api/assignment"),
  templates: (channel) => request(`/api/channels/${encodeURIComponent(channel)}/templates`),
  refreshTemplates: (channel) => request(`/api/channels/${encodeURIComponent(channel)}/templates`,
    { method: "POST", body: {} }),
  setAssignment: (mode, capacity) => request("/api/assignment",
    { method: "PUT", body: mode ? { mode, capacity } : { mode: null } }),
  aiAgent: () => request("/api/ai-agent"),
  setPublished: (published) => request("/api/ai-agent", { method: "PATCH", body: { published } }),
  conversations: (view, { cursor = "", limit = 50, label = "" } = {}) => request(
    `/api/conversations?view=${encodeURIComponent(view)}&limit=${limit}&cursor=${encodeURIComponent(cursor)}`
    + (label ? `&label=${encodeURIComponent(label)}` : "")),
  conversation: (id) => request(`/api/conversations/${encodeURIComponent(id)}`),
  messages: (id, before) => request(
    `/api/conversations/${encodeURIComponent(id)}/messages?before=${encodeURIComponent(before)}&limit=100`),
  assign: (id, assignee, force = false) => request(`/api/conversations/${encodeURIComponent(id)}/assign`,
    { method: "POST", body: force ? { assignee, force: true } : { assignee } }),
  unassign: (id) => request(`/api/conversations/${encodeURIComponent(id)}/unassign`, { method: "POST", body: {} }),
  close: (id) => request(`/api/conversations/${encodeURIComponent(id)}/close`, { method: "POST", body: {} }),
  reply: (id, text, clientId) => request(`/api/conversations/${encodeURIComponent(id)}/messages`,
    { method: "POST", body: { text, client_id: clientId } }),
  template: (id, template, params, clientId) => request(`/api/conversations/${encodeURIComponent(id)}/messages`,
    { method: "POST", body: { template, params, client_id: clientId } }),
  resend: (id, messageId) => request(
    `/api/conversations/${encodeURIComponent(id)}/messages/${encodeURIComponent(messageId)}/resend`,
    { method: "POST", body: {} }),
  resendAll: (id) => request(`/api/conversations/${encodeURIComponent(id)}/resend`, { method: "POST", body: {} }),
  note: (id, text) => request(`/api/conversations/${encodeURIComponent(id)}/notes`, { method: "POST", body: { text } }),
  reopen: (id) => request(`/api/conversations/${encodeURIComponent(id)}/reopen`, { method: "POST", body: {} }),
  search: (q, { status = "", cursor = "", label = "" } = {}) => request(`/api/search?q=${encodeURIComponent(q)}`
    + `&status=${encodeURIComponent(status)}&label=${encodeURIComponent(label)}&cursor=${encodeURIComponent(cursor)}&limit=30`),
  labels: () => request("/api/labels"),
  defineLabel: (name, color) => request(`/api/labels/${encodeURIComponent(name)}`, { method: "PUT", body: { color } }),
  deleteLabel: (name) => request(`/api/labels/${encodeURIComponent(name)}`, { method: "DELETE" }),
  label: (id, label) => request(`/api/conversations/${encodeURIComponent(id)}/labels`, { method: "POST", body: { label } }),
  unlabel: (id, label) => request(`/api/conversations/${encodeURIComponent(id)}/labels/${encodeURIComponent(label)}`,
    { method: "DELETE" }),
  canned: () => request("/api/canned"),
  saveCanned: (shortcut, text) => request(`/api/canned/${encodeURIComponent(shortcut)}`, { method: "PUT", body: { text } }),
  deleteCanned: (shortcut) => request(`/api/canned/${encodeURIComponent(shortcut)}`, { method: "DELETE" }),
  editContact: (id, changes) => request(`/api/contacts/${encodeURIComponent(id)}`, { method: "PATCH", body: changes }),
  snooze: (id, until) => request(`/api/conversations/${encodeURIComponent(id)}/snooze`,
    { method: "POST", body: { until } }),
  unsnooze: (id) => request(`/api/conversations/${encodeURIComponent(id)}/unsnooze`, { method: "POST", body: {} }),
  contacts: (cursor = "") => request(`/api/contacts?limit=100&cursor=${encodeURIComponent(cursor)}`),
};
