// What the widget remembers in this browser, under one key per channel and Baton origin: the visitor
// session and unsent messages (localStorage), and whether the panel is open (sessionStorage: this tab).

function area(name) {
  try {
    return window[name]; // the getter itself throws where a site's storage is blocked
  } catch {
    return null;
  }
}

export function storage(prefix, name = "localStorage") {
  const store = area(name);
  return {
    get(key, fallback) {
      try {
        const raw = store && store.getItem(`${prefix}.${key}`);
        return raw ? JSON.parse(raw) : fallback;
      } catch {
        return fallback;
      }
    },
    set(key, value) {
      try {
        if (value === null || value === undefined) store.removeItem(`${prefix}.${key}`);
        else store.setItem(`${prefix}.${key}`, JSON.stringify(value));
      } catch {
        // Full or blocked (private mode, third-party storage off): the chat still works for this page view.
      }
    },
  };
}
