// The widget, started by the /widget.js loader with the Baton origin and the channel of its script tag.

import { Chat } from "./chat.js";

export function start({ origin, channel }) {
  const chat = new Chat(origin, channel);
  const mount = () => chat.mount();
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
  return { open: () => chat.open(), close: () => chat.close() };
}
