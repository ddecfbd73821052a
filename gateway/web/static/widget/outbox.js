// Messages the visitor typed, sent one at a time in the order they were typed, each under its own
// client_id: a retried POST is recorded once however often it is sent. Unsent messages are kept in
// storage and sent again after a reload.

import { fill, h } from "../inbox/dom.js";
import { t } from "./i18n.js";
import { pendingBubble } from "./messages.js";

const RETRY_DELAYS = [1000, 2000, 4000]; // ms, for a network failure or a server error
const RATE_LIMIT_DEFAULT = 5; // s, when a 429 does not say (or, cross-origin, cannot show) how long

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export function uid() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

export class Outbox {
  /**
   * send(item) posts it and resolves to {conversation, id}; renew() replaces an expired session;
   * acknowledged(item, conversation, id) shows it as recorded; place(node) puts a new bubble in the log;
   * saved: the storage that keeps unsent messages.
   */
  constructor({ send, renew, acknowledged, place, saved }) {
    Object.assign(this, { send, renew, acknowledged, place, saved });
    this.items = []; // {client_id, text, node, id, tries}
    this.running = false;
  }

  get stored() {
    return this.saved.get("outbox", []);
  }

  add(text, clientId = uid()) {
    const item = { client_id: clientId, text, node: pendingBubble(text), id: null, tries: 0 };
    this.items.push(item);
    if (!this.stored.some((o) => o.client_id === item.client_id)) {
      this.saved.set("outbox", [...this.stored, { client_id: item.client_id, text }]);
    }
    this.place(item.node);
    this.status(item, t("sending"));
    this.pump();
  }

  /** The server's copy of a message being sent (its echo on the event stream): the item, if it is one. */
  claim(text) {
    return this.items.find((item) => !item.id && item.text === text) || null;
  }

  /** The message is recorded (its POST answered, or its echo seen): it leaves the queue. */
  done(item, id) {
    item.id = id;
    this.items = this.items.filter((other) => other !== item);
    this.saved.set("outbox", this.stored.filter((o) => o.client_id !== item.client_id));
  }

  /** After a failure: try the queue again from its first message. */
  retry() {
    for (const item of this.items) {
      item.tries = 0;
      item.node.classList.remove("bw-failed");
      item.node.classList.add("bw-pending");
      this.status(item, t("sending"));
    }
    this.pump();
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.items.length && await this.deliver(this.items[0]));
    } finally {
      this.running = false;
    }
  }

  /** Send one message; false when it could not be sent and the queue must wait for a retry. */
  async deliver(item) {
    for (;;) {
      if (item.id) return true; // acknowledged meanwhile: its echo arrived on the event stream
      try {
        const result = await this.send(item);
        if (!item.id) this.acknowledged(item, result.conversation, result.id);
        return true;
      } catch (error) {
        if (item.id) return true;
        if (error.status === 401 && !item.renewed) {
          item.renewed = true;
          await this.renew().catch(() => {});
        } else if (error.status === 429) {
          await this.waitOut(item, error.retryAfter ?? RATE_LIMIT_DEFAULT);
        } else if (error.retryable && item.tries < RETRY_DELAYS.length) {
          await sleep(RETRY_DELAYS[item.tries++]);
        } else if (error.retryable) {
          this.failed();
          return false;
        } else {
          this.rejected(item, error);
          return true;
        }
      }
    }
  }

  /** Rate limited: the message stays queued, and says calmly when it will go. */
  async waitOut(item, seconds) {
    for (let left = Math.max(1, Math.ceil(seconds)); left > 0 && !item.id; left -= 1) {
      this.status(item, t("too_fast_retry", { s: left }));
      await sleep(1000);
    }
    if (!item.id) this.status(item, t("sending"));
  }

  /** The network is gone: every queued message waits for the visitor (or the browser going online). */
  failed() {
    for (const item of this.items) {
      item.node.classList.remove("bw-pending");
      item.node.classList.add("bw-failed");
      this.status(item, t("not_sent"), true);
    }
  }

  /** The server refused the message for good (too long, say): it is dropped, the next ones go on. */
  rejected(item, error) {
    this.done(item, null);
    item.node.classList.remove("bw-pending");
    item.node.classList.add("bw-failed");
    this.status(item, t("not_sent_why", { why: error.message }));
  }

  status(item, text, retry = false) {
    fill(item.node.querySelector(".bw-status"), text,
      retry ? [" ", h("button", { class: "bw-retry", type: "button", text: t("retry"), onclick: () => this.retry() })]
        : null);
  }

  get hasFailed() {
    return this.items.some((item) => item.node.classList.contains("bw-failed"));
  }
}
