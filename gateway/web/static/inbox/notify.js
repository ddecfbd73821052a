// Telling agents something happened: toasts, a chime made with Web Audio, desktop notifications, and
// the waiting count in the tab title.

import { h, icon } from "./dom.js";

const SOUND_KEY = "baton.inbox.sound";
let audio = null;

export function soundEnabled() {
  return localStorage.getItem(SOUND_KEY) !== "off";
}

export function setSoundEnabled(on) {
  localStorage.setItem(SOUND_KEY, on ? "on" : "off");
}

/** Browsers start audio only after a user gesture: create the context on the first one. */
export function unlockAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!audio) audio = new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
}

export function chime() {
  if (!soundEnabled()) return;
  unlockAudio();
  if (!audio) return;
  const start = audio.currentTime + 0.01;
  [[880, 0], [1318.5, 0.14]].forEach(([frequency, offset]) => {
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.18, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.45);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.5);
  });
}

export function desktopPermission() {
  return "Notification" in window ? Notification.permission : "unsupported";
}

export async function askDesktopPermission() {
  if (!("Notification" in window)) return "unsupported";
  return Notification.requestPermission();
}

export function desktop(title, body, tag, onClick) {
  if (desktopPermission() !== "granted") return;
  try {
    const note = new Notification(title, { body, tag, icon: "/static/baton.svg" });
    note.onclick = () => {
      window.focus();
      onClick();
      note.close();
    };
  } catch {
    // Some browsers allow notifications only from a service worker; the toast is enough there.
  }
}

export function toast(container, { title, body = "", tone = "info", action = null, timeout = 8000 }) {
  const close = () => {
    item.classList.add("toast-leaving");
    setTimeout(() => item.remove(), 200);
  };
  const item = h("div", { class: `toast toast-${tone}`, role: tone === "error" ? "alert" : "status" },
    h("span", { class: "toast-icon" }, icon(tone === "error" ? "alert" : tone === "handover" ? "bell" : "check")),
    h("div", { class: "toast-text" }, h("strong", { text: title }), body ? h("p", { text: body }) : null),
    action ? h("button", { class: "btn btn-small", type: "button", onclick: () => { action.run(); close(); } },
      action.label) : null,
    h("button", { class: "icon-btn toast-close", type: "button", "aria-label": "Dismiss", onclick: close }, icon("x")));
  container.appendChild(item);
  while (container.children.length > 4) container.firstElementChild.remove();
  if (timeout) setTimeout(close, timeout);
  return item;
}

export function titleBadge(waiting) {
  document.title = waiting > 0 ? `(${waiting}) Waiting · Baton inbox` : "Baton inbox";
}
