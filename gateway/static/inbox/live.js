// The inbox's live connection: /api/events over EventSource. The browser reconnects by itself with
// Last-Event-ID; when it gives up (an HTTP error), we reconnect with ?last_event_id= after a backoff.
// Every (re)connection calls onOpen so the caller can reload what it shows; ids already seen are skipped.

const TYPES = ["conversation.created", "message.created", "conversation.handover", "conversation.assigned",
  "conversation.closed", "contact.form_sent", "contact.captured", "message.status", "ai_agent.updated"];

function streamId(id) {
  const [ms, seq] = String(id).split("-");
  return [Number(ms) || 0, Number(seq) || 0];
}

function after(a, b) {
  const [am, as] = streamId(a);
  const [bm, bs] = streamId(b);
  return am > bm || (am === bm && as > bs);
}

export class Live {
  constructor(url, { onEvent, onOpen, onStatus }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onStatus = onStatus;
    this.lastId = "";
    this.source = null;
    this.retries = 0;
    this.timer = 0;
    this.active = false;
    // Back online while waiting out a backoff: reconnect now. (While the stream is merely reconnecting, the
    // browser resends Last-Event-ID by itself; the server's first frame sets it even before any event.)
    window.addEventListener("online", () => {
      if (this.active && !this.source) this.start();
    });
  }

  start() {
    this.stop();
    this.active = true;
    const url = this.lastId ? `${this.url}?last_event_id=${encodeURIComponent(this.lastId)}` : this.url;
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    this.onStatus("connecting");
    source.addEventListener("open", () => {
      this.retries = 0;
      this.onStatus("live");
      this.onOpen();
    });
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) this.retry();
      else this.onStatus("reconnecting");
    });
    for (const type of TYPES) source.addEventListener(type, (event) => this.receive(event));
  }

  receive(event) {
    if (event.lastEventId) {
      if (this.lastId && !after(event.lastEventId, this.lastId)) return;
      this.lastId = event.lastEventId;
    }
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    this.onEvent(data);
  }

  retry() {
    this.stop();
    this.onStatus("offline");
    const delay = Math.min(30000, 1000 * 2 ** this.retries++) * (0.75 + Math.random() / 2);
    this.timer = setTimeout(() => this.start(), delay);
  }

  /** Stop for good (signing out). */
  close() {
    this.active = false;
    this.stop();
  }

  stop() {
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }
}
