// One event stream per browser, shared by its tabs (the inbox's and the widget's alike).
//
// A browser opens at most six HTTP/1.1 connections to one host, and an event stream holds one for as long as
// its tab is open: seven inbox tabs, or seven shop pages with the widget, would leave no connection for
// anything else (lists that never load, messages "Sending…" for ever). So the tabs of one browser elect a
// leader: it alone reads the stream (stream.js) and relays every frame, its status and its reconnections to
// the others over a BroadcastChannel. Each tab still sends its own requests (replies, messages) itself.
//
// The leader holds a Web Lock (navigator.locks) for as long as it lives; the browser hands the lock to the
// next tab waiting for it the moment the leader's tab closes or crashes. That tab opens the stream from the
// last event id it was relayed (Last-Event-ID), so the server sends what happened in between: nothing is
// lost, and what is sent twice is skipped by its id as after any reconnection. Where Web Locks are missing
// (an insecure http:// page, an old browser), the leader says it is alive every second instead, and a tab
// that has not heard it for three seconds, or has heard it leave, takes over; without BroadcastChannel each
// tab reads its own stream.

import { EventStream } from "./stream.js";

const BEAT_MS = 1000; // the fallback's heartbeat
const SILENT_MS = 3000; // no heartbeat for this long: the leader is gone

function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

function channelOf(name) {
  try {
    return typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
  } catch {
    return null; // a sandboxed or opaque-origin document
  }
}

export class SharedStream {
  /**
   * name: what the tabs share (one stream per name: the session or visitor it is read with belongs in it);
   * url and options: as EventStream's, called in every tab: onOpen after each (re)connection of the
   * leader's stream, onEvent for each event with data, onStatus(state, detail), onRejected(status).
   */
  constructor(name, url, { headers = () => ({}), credentials = "omit", onOpen = () => {}, onEvent = () => {},
    onStatus = () => {}, onRejected = () => {} } = {}) {
    Object.assign(this, { name, url, headers, credentials, onOpen, onEvent, onStatus, onRejected });
    this.id = newId();
    this.lastEventId = "";
    this.state = ["connecting", null];
    this.active = false;
    this.stream = null; // the leader's own EventStream
    this.channel = null;
    this.release = null; // ends the leader's hold on the lock
    this.abandon = null; // withdraws a tab's place in the queue for the lock
    this.leaderId = "";
    this.heard = 0;
    this.beat = 0;
    this.takeover = 0;
    // A leader going away says so, for the fallback's followers (Web Locks need no word: the browser frees
    // the lock of a closed tab itself). The stream stays: a page restored from the back/forward cache goes on.
    this.leave = () => {
      if (this.leading) this.post({ type: "bye" });
    };
  }

  get leading() {
    return this.stream !== null;
  }

  start() {
    if (this.active) return;
    this.active = true;
    this.status("connecting", null);
    this.channel = channelOf(`baton.events:${this.name}`);
    if (!this.channel) {
      this.lead();
      return;
    }
    this.channel.onmessage = (message) => this.receive(message.data || {});
    window.addEventListener("pagehide", this.leave);
    this.post({ type: "hello" }); // the leader, if there is one, answers with where the stream stands
    if (navigator.locks && navigator.locks.request) this.queueForLock();
    else this.watchLeader();
  }

  /** Stop for good: the stream closes and, if this tab led, another tab takes over. */
  close() {
    if (!this.active) return;
    this.active = false;
    window.removeEventListener("pagehide", this.leave);
    clearInterval(this.beat);
    clearTimeout(this.takeover);
    if (this.abandon) this.abandon.abort();
    if (this.leading) {
      this.stream.close();
      this.stream = null;
      this.post({ type: "bye" });
    }
    if (this.release) this.release();
    if (this.channel) this.channel.close();
    this.channel = null;
  }

  // --- electing the leader ---------------------------------------------------------------------

  queueForLock() {
    this.abandon = new AbortController();
    navigator.locks.request(`baton.events:${this.name}`, { signal: this.abandon.signal }, () => {
      if (!this.active) return undefined;
      this.lead();
      return new Promise((resolve) => { this.release = resolve; });
    }).catch(() => {}); // withdrawn (this tab closed its stream while waiting): nothing to do
  }

  /** Without Web Locks: follow a leader's heartbeat, and lead when it stops. */
  watchLeader() {
    this.heard = Date.now() - SILENT_MS + BEAT_MS / 2; // a leader answers the hello at once; else lead
    this.beat = setInterval(() => {
      if (this.leading) this.post({ type: "beat" });
      else if (Date.now() - this.heard > SILENT_MS) this.lead();
    }, BEAT_MS);
  }

  lead() {
    if (!this.active || this.leading) return;
    this.leaderId = this.id;
    this.stream = new EventStream(this.url, {
      headers: this.headers,
      credentials: this.credentials,
      onOpen: () => {
        this.post({ type: "open" });
        this.onOpen();
      },
      onFrame: (frame) => {
        if (frame.id !== null) this.lastEventId = frame.id;
        this.post({ type: "frame", frame });
      },
      onEvent: (frame) => this.onEvent(frame),
      onStatus: (state, detail = null) => {
        this.post({ type: "status", state, detail });
        this.status(state, detail);
      },
      onRejected: (code) => {
        this.post({ type: "rejected", code });
        this.rejected(code);
      },
    });
    // Resume from the last event this tab was relayed: the server sends what came after it.
    this.stream.lastEventId = this.lastEventId;
    this.stream.start();
    if (!(navigator.locks && navigator.locks.request)) this.post({ type: "beat" });
  }

  /** The fallback's leaders met (two tabs took over at once): the one with the smaller id stays. */
  stepDown() {
    this.stream.close();
    this.stream = null;
  }

  // --- relaying ----------------------------------------------------------------------------------

  post(message) {
    if (!this.channel) return;
    try {
      this.channel.postMessage({ ...message, from: this.id });
    } catch {
      // A closed channel (the tab is going away): nothing to tell.
    }
  }

  receive(message) {
    if (!this.active || (message.to && message.to !== this.id)) return;
    const { type, from } = message;
    if (type === "hello") {
      if (this.leading) this.welcome(from);
      return;
    }
    if (type === "bye") {
      // Take over at once, one tab first: the first to lead says so, and the others, hearing it, stay.
      const left = Date.now();
      clearTimeout(this.takeover);
      this.takeover = setTimeout(() => {
        if (this.heard < left) this.lead();
      }, Math.random() * BEAT_MS / 2);
      return;
    }
    if (type === "beat") {
      this.heard = Date.now();
      this.leaderId = from;
      if (this.leading && from < this.id) this.stepDown();
      return;
    }
    if (this.leading) return; // only a leader's own stream speaks for it
    this.heard = Date.now();
    if (type === "frame") {
      const { frame } = message;
      if (frame.id !== null) this.lastEventId = frame.id;
      if (frame.data !== null) this.onEvent(frame);
    } else if (type === "status") {
      this.status(message.state, message.detail);
    } else if (type === "open") {
      this.onOpen();
    } else if (type === "welcome") {
      if (!this.lastEventId) this.lastEventId = message.lastEventId;
      this.status(message.state, message.detail);
      if (message.state === "live") this.onOpen();
    } else if (type === "rejected") {
      this.rejected(message.code);
    }
  }

  /** Where the owner knows the stream stands without an event (e.g. from a history it read): a tab that never got
   * an event on the stream (what it shows came with the history) still resumes from there when it takes over. */
  saw(eventId) {
    if (!this.lastEventId && eventId) this.lastEventId = eventId;
  }

  /** A tab that just joined: where the stream stands, so it shows the same state and can take over from here. */
  welcome(to) {
    const [state, detail] = this.state;
    this.post({ type: "welcome", to, state, detail, lastEventId: this.lastEventId });
  }

  status(state, detail) {
    this.state = [state, detail];
    this.onStatus(state, detail);
  }

  rejected(code) {
    this.close();
    this.onRejected(code);
  }
}
