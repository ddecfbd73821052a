// Server-sent events read with fetch(), for the inbox and the widget alike.
//
// EventSource can send neither an Authorization header (so a token would have to travel in the URL, and
// end up in access logs) nor tell a 401 from a dropped network (so a dead session reconnects forever).
// This reader can: it sends the caller's headers and Last-Event-ID, parses text/event-stream itself,
// stops on a 401, waits out a 429's Retry-After, and otherwise reconnects with a growing delay.
//
// It says honestly what holds it up: a stream that cannot open (refused, an error status, or no answer at all,
// as when the browser's six connections to the host are all taken) is reported as "error" with the reason and
// when it tries again, never as "Connecting…" for ever.

const DEFAULT_RETRY_MS = 2000;
const MAX_DELAY_MS = 30000;
// The servers send a comment every 15 s; a connection silent for longer than this is dead (a half-open
// TCP connection never errors by itself).
const SILENCE_MS = 45000;
// A stream with no first byte after this long is reported as not opening (it keeps waiting until SILENCE_MS).
const OPEN_TIMEOUT_MS = 8000;

/** A text/event-stream parser: feed() it text as it arrives; it calls onFrame at each blank line. */
export function eventParser(onFrame, onRetry = () => {}) {
  let buffer = "";
  let data = [];
  let event = "";
  let id = null; // the last event id buffer: it carries over frames, as the spec says

  function line(text) {
    if (text === "") {
      onFrame({ id, event: event || "message", data: data.length ? data.join("\n") : null });
      data = [];
      event = "";
      return;
    }
    if (text.startsWith(":")) return; // a comment: keepalive
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\0")) id = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
  }

  return function feed(chunk) {
    buffer += chunk;
    for (;;) {
      const end = buffer.search(/\r\n|\r|\n/);
      if (end === -1) return;
      // A lone CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (buffer[end] === "\r" && end === buffer.length - 1) return;
      const width = buffer.startsWith("\r\n", end) ? 2 : 1;
      line(buffer.slice(0, end));
      buffer = buffer.slice(end + width);
    }
  };
}

/** Seconds to wait from a Retry-After header (seconds or an HTTP date), or null when there is none. */
export function retryAfterSeconds(value) {
  if (value === null || value === undefined || value === "") return null;
  if (/^\s*\d+\s*$/.test(String(value))) return Number(value);
  const when = Date.parse(String(value));
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

export class EventStream {
  /**
   * url: the stream; headers(): extra request headers for each connection (read at each one);
   * onOpen(): after each (re)connection, so the caller can reload what it shows;
   * onEvent({id, event, data}): each event with data; onFrame(frame): every frame, an id-only one too;
   * onStatus(state, detail): state "connecting"|"live"|"reconnecting"|"offline"|"error", and for "error"
   * detail {reason, retryIn} (why the stream cannot open, and the seconds until it tries again, or null while
   * a request is still waiting for an answer);
   * onRejected(status): a 401, after which the stream stays closed.
   */
  constructor(url, { headers = () => ({}), credentials = "omit", onOpen = () => {}, onEvent = () => {},
    onFrame = () => {}, onStatus = () => {}, onRejected = () => {} } = {}) {
    Object.assign(this, { url, headers, credentials, onOpen, onEvent, onFrame, onStatus, onRejected });
    this.lastEventId = "";
    this.retryMs = DEFAULT_RETRY_MS;
    this.failures = 0;
    this.active = false;
    this.controller = null;
    this.timer = 0;
    this.watchdog = 0;
    this.opening = 0;
    this.online = () => {
      if (this.active && !this.controller) this.connect();
    };
  }

  start() {
    if (this.active) return;
    this.active = true;
    window.addEventListener("online", this.online);
    this.onStatus("connecting");
    this.connect();
  }

  /** Stop for good: no reconnection, whatever is under way. */
  close() {
    this.active = false;
    window.removeEventListener("online", this.online);
    clearTimeout(this.timer);
    this.abort();
  }

  abort() {
    clearTimeout(this.watchdog);
    clearTimeout(this.opening);
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  async connect() {
    clearTimeout(this.timer);
    this.abort();
    const controller = new AbortController();
    this.controller = controller;
    const headers = { Accept: "text/event-stream", ...this.headers() };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let response;
    this.opening = setTimeout(() => {
      if (controller === this.controller) {
        this.onStatus("error", { reason: "the server has not answered yet", retryIn: null });
      }
    }, OPEN_TIMEOUT_MS);
    try {
      this.guard(controller);
      response = await fetch(this.url, { headers, credentials: this.credentials, cache: "no-store",
        signal: controller.signal });
    } catch {
      this.dropped(controller, null, navigator.onLine === false ? "offline" : "can't reach the server");
      return;
    }
    if (controller !== this.controller) return;
    if (response.status === 401) { // the session ended: reconnecting would only be refused again
      this.close();
      this.onRejected(response.status);
      return;
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
      const wait = response.status === 429 ? retryAfterSeconds(response.headers.get("retry-after")) : null;
      response.body?.cancel().catch(() => {});
      const reason = response.status === 429 ? "the server asked to slow down"
        : !response.ok ? `the server answered ${response.status}` : "the server did not answer with an event stream";
      this.dropped(controller, wait === null ? null : wait * 1000, reason);
      return;
    }
    await this.read(response.body, controller);
  }

  async read(body, controller) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const feed = eventParser((frame) => this.dispatch(frame, controller), (ms) => { this.retryMs = ms; });
    let opened = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || controller !== this.controller) break;
        this.guard(controller);
        if (!opened) {
          // Open at the first bytes, not at the headers: the server fixes where the stream starts before
          // it sends anything, so what the caller reloads now and what the stream sends next leave no gap.
          opened = true;
          clearTimeout(this.opening);
          this.failures = 0;
          this.onStatus("live");
          this.safely(this.onOpen);
        }
        feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // The connection broke mid-stream: reconnect below, like a stream the server ended.
    }
    reader.cancel().catch(() => {});
    this.dropped(controller, null, opened ? "" : "the server sent nothing");
  }

  dispatch(frame, controller) {
    if (!this.active || controller !== this.controller) return;
    if (frame.id !== null) this.lastEventId = frame.id;
    this.safely(this.onFrame, frame);
    if (frame.data !== null) this.safely(this.onEvent, frame);
  }

  /** A fault in the caller's handling is the page's bug, not a broken connection: report it, read on. */
  safely(handler, ...args) {
    try {
      handler(...args);
    } catch (error) {
      if (window.reportError) window.reportError(error);
      else setTimeout(() => { throw error; });
    }
  }

  /** Restart the silence watchdog: anything from the server, even a comment, proves the line alive. */
  guard(controller) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (controller === this.controller) controller.abort();
    }, SILENCE_MS);
  }

  /** The connection ended or never opened (`reason` says why it never did): try again after a while. */
  dropped(controller, delay = null, reason = "") {
    if (controller !== this.controller) return;
    this.abort();
    if (!this.active) return;
    // The first reconnection waits what the server asked (retry:), later ones ever longer, with jitter so
    // that clients dropped together do not all come back in the same instant.
    const attempt = this.failures++;
    const backoff = attempt === 0 ? this.retryMs
      : Math.min(MAX_DELAY_MS, this.retryMs * 2 ** attempt) * (0.75 + Math.random() / 2);
    const wait = delay === null ? backoff : delay;
    if (navigator.onLine === false) this.onStatus("offline");
    else if (reason) this.onStatus("error", { reason, retryIn: Math.max(1, Math.round(wait / 1000)) });
    else this.onStatus("reconnecting");
    this.timer = setTimeout(() => this.connect(), wait);
  }
}
