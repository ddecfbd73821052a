// The visitor API of one webchat channel, on the Baton origin the widget was loaded from. The visitor's
// token travels in the Authorization header only (never in a URL, never as a cookie).

import { retryAfterSeconds } from "../inbox/stream.js";

// A request unanswered after this long fails as a network error would (and a message is sent again under its
// client_id): nothing waits "Sending…" for ever behind a connection that never comes.
const TIMEOUT_MS = 15000;

export class RequestFailed extends Error {
  constructor(status, body, retryAfter = null) {
    super((body && body.error) || (status ? `HTTP ${status}` : "network error"));
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter; // seconds, for a 429
  }

  /** Worth trying again as it is: the request may not have arrived, or the server had a problem. */
  get retryable() {
    return this.status === 0 || this.status >= 500;
  }
}

export class VisitorApi {
  constructor(origin, channel) {
    this.base = `${origin}/webchat/${encodeURIComponent(channel)}`;
    this.token = "";
  }

  get eventsUrl() {
    return `${this.base}/events`;
  }

  authorization() {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  async call(method, path, body) {
    const headers = { Accept: "application/json", ...this.authorization() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    let data;
    try {
      response = await fetch(`${this.base}${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
        cache: "no-store", signal: controller.signal,
      });
      data = await response.json().catch(() => ({}));
    } catch {
      throw new RequestFailed(0, null);
    } finally {
      clearTimeout(timer);
    }
    if (response.ok) return data;
    // Cross-origin, Retry-After is readable only when the server exposes it (Access-Control-Expose-Headers).
    const wait = response.status === 429
      ? retryAfterSeconds(response.headers.get("retry-after")) ?? retryAfterSeconds(data.retry_after) : null;
    throw new RequestFailed(response.status, data, wait);
  }

  config() {
    return this.call("GET", "/config");
  }

  createSession() {
    return this.call("POST", "/sessions");
  }

  send(text, clientId) {
    return this.call("POST", "/messages", { text, client_id: clientId });
  }

  /** The newest page of the conversation, or the page before message `before`. */
  history(before = "") {
    return this.call("GET", before ? `/messages?before=${encodeURIComponent(before)}` : "/messages");
  }

  contact(values) {
    return this.call("POST", "/contact", values);
  }

  /** Rate the visitor's last conversation (closed): 1 to 5, and an optional comment. */
  rate(rating, comment) {
    return this.call("POST", "/rating", comment ? { rating, comment } : { rating });
  }
}
