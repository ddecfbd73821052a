// The agent API over the session cookie; every state-changing call carries the session's CSRF value.

let csrf = "";
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `request failed (${status})`);
    this.status = status;
    this.body = body || {};
  }
}

export function configure({ token, unauthorized }) {
  if (token !== undefined) csrf = token;
  if (unauthorized) onUnauthorized = unauthorized;
}

export async function request(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { error: "Can't reach the server. Check your connection." });
  }
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && !path.startsWith("/inbox/session")) onUnauthorized();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const api = {
  session: () => request("/inbox/session"),
  signIn: (token) => request("/inbox/session", { method: "POST", body: { token } }),
  signOut: () => request("/inbox/session/delete", { method: "POST", body: {} }),
  team: () => request("/api/team"),
  aiAgent: () => request("/api/ai-agent"),
  setPublished: (published) => request("/api/ai-agent", { method: "PATCH", body: { published } }),
  conversations: (view) => request(`/api/conversations?view=${encodeURIComponent(view)}&limit=100`),
  conversation: (id) => request(`/api/conversations/${encodeURIComponent(id)}`),
  assign: (id, assignee, force = false) => request(`/api/conversations/${encodeURIComponent(id)}/assign`,
    { method: "POST", body: force ? { assignee, force: true } : { assignee } }),
  unassign: (id) => request(`/api/conversations/${encodeURIComponent(id)}/unassign`, { method: "POST", body: {} }),
  close: (id) => request(`/api/conversations/${encodeURIComponent(id)}/close`, { method: "POST", body: {} }),
  reply: (id, text) => request(`/api/conversations/${encodeURIComponent(id)}/messages`,
    { method: "POST", body: { text } }),
  contacts: () => request("/api/contacts?limit=500"),
};
