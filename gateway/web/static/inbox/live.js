// The inbox's live connection: /api/events read with fetch() (stream.js), over the session cookie, one
// stream for all the browser's inbox tabs (shared.js).
// Every (re)connection resumes from Last-Event-ID and calls onOpen so the caller can reload what it
// shows; ids already seen are skipped. The session ending (the agent revoked, the session expired) is
// told by a session.ended event or a 401: then the stream stays closed and onEnded says why.

import { SharedStream } from "./shared.js";

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
  /** name: what the tabs sharing the stream have in common (the workspace and the agent). */
  constructor(url, { name, onEvent, onOpen, onStatus, onEnded }) {
    this.onEvent = onEvent;
    this.lastId = "";
    this.stream = new SharedStream(name, url, {
      credentials: "same-origin",
      onOpen,
      onStatus,
      onEvent: (frame) => this.receive(frame),
      onRejected: () => onEnded(""),
    });
    this.onEnded = onEnded;
  }

  start() {
    this.stream.start();
  }

  receive(frame) {
    if (frame.id) {
      if (this.lastId && !after(frame.id, this.lastId)) return;
      this.lastId = frame.id;
    }
    let data;
    try {
      data = JSON.parse(frame.data);
    } catch {
      return;
    }
    if (frame.event === "session.ended") {
      this.close();
      this.onEnded((data && data.reason) || "");
      return;
    }
    this.onEvent(data);
  }

  /** Stop for good (signing out, or the session ended). */
  close() {
    this.stream.close();
  }
}
