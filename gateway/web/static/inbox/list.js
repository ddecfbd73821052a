// The left-hand views with their live counts and the list of conversations in the current view.

import { ago, avatar, fill, h, icon, waited } from "./dom.js";
import { aiName, channelType, customerName, isMine, ownerLabel, store, VIEWS } from "./store.js";

export function renderCounts(counts) {
  for (const [view, count] of Object.entries(counts)) {
    const badge = document.querySelector(`[data-count="${view}"]`);
    if (!badge) continue;
    const previous = badge.textContent;
    badge.textContent = String(count);
    badge.classList.toggle("is-zero", !count);
    if (view === "waiting" && Number(previous) < count) {
      badge.classList.remove("pulse");
      void badge.offsetWidth; // restart the animation
      badge.classList.add("pulse");
    }
  }
}

/** What the list holds: a view, or a label's view. */
export function listKey() {
  return store.label ? `label:${store.label}` : store.view;
}

export function renderNav(route) {
  for (const item of document.querySelectorAll(".nav-item")) {
    const current = route.label ? item.dataset.label === route.label
      : route.page === "inbox" ? item.dataset.view === route.view : item.dataset.page === route.page;
    if (current) item.setAttribute("aria-current", "page");
    else item.removeAttribute("aria-current");
  }
}

export function renderList(list, empty) {
  if (store.search) {
    renderResults(list, empty);
    return;
  }
  const view = store.label ? { title: `Label: ${store.label}`, empty: "No conversation has this label." }
    : VIEWS[store.view];
  document.getElementById("list-title").textContent = view.title;
  const total = (store.label ? store.counts.label : store.counts[store.view]) || 0;
  const loaded = store.listed === listKey();
  // A count is shown only above the list it counts: never "5 conversations" above a list still loading.
  let count = loaded ? `${total} conversation${total === 1 ? "" : "s"}` : "Loading…";
  if (store.listError) count = `${loaded ? "Not up to date" : "Couldn't load"}: ${store.listError} Retrying…`;
  const status = document.getElementById("list-count");
  status.textContent = count;
  status.classList.toggle("is-error", Boolean(store.listError));
  const next = loaded && store.nextCursor ? more() : null;
  fill(list, loaded ? afterHoursFirst(store.conversations).map(row) : [], next);
  if (next && nearEnd) nearEnd.observe(next);
  empty.hidden = loaded && store.conversations.length > 0;
  document.getElementById("list-empty-text").textContent = loaded ? view.empty
    : store.listError ? "The conversations couldn't be loaded. Trying again…" : "Loading conversations…";
}

/** Chats that started waiting while the team was out come first (the oldest first) until someone takes them: the
 * team sees the night's queue when it opens. The rest keep the view's order. */
export function afterHoursFirst(conversations) {
  const waiting = (c) => c.status === "open" && c.owner === "none" && c.after_hours;
  const first = conversations.filter(waiting).sort((a, b) => a.after_hours - b.after_hours);
  return first.length ? first.concat(conversations.filter((c) => !waiting(c))) : conversations;
}

function more() {
  const left = ((store.label ? store.counts.label : store.counts[store.view]) || 0) - store.conversations.length;
  return h("li", { class: "row-more" }, h("button", { type: "button", class: "btn btn-small", id: "load-more" },
    left > 0 ? `Load more (${left} more)` : "Load more"));
}

let nearEnd = null;

/** Load more: the button, or the list scrolled near its end (infinite scroll: the button comes into view). */
export function bindPaging(list, loadMore) {
  list.addEventListener("click", (event) => {
    if (event.target.closest("#load-more")) loadMore();
  });
  nearEnd = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting && entry.target.isConnected)) loadMore();
  }, { rootMargin: "0px 0px 200px 0px" });
}

/** Search results in place of the view: each opens its conversation at the matching message. */
function renderResults(list, empty) {
  const { results, nextCursor, error, loading } = store.search;
  document.getElementById("list-title").textContent = "Search";
  const status = document.getElementById("list-count");
  status.textContent = error ? `Couldn't search: ${error}` : loading ? "Searching…"
    : `${results.length}${nextCursor ? "+" : ""} result${results.length === 1 ? "" : "s"}`;
  status.classList.toggle("is-error", Boolean(error));
  const next = nextCursor ? h("li", { class: "row-more" }, h("button", { type: "button", class: "btn btn-small",
    id: "load-more" }, "More results")) : null;
  fill(list, results.map((result) => row(result.conversation, result)), next);
  if (next && nearEnd) nearEnd.observe(next);
  empty.hidden = loading || results.length > 0 || Boolean(nextCursor);
  document.getElementById("list-empty-text").textContent = "No conversation matches every word.";
}

function row(conversation, result = null) {
  const name = customerName(conversation);
  const open = conversation.id === store.openId;
  const owner = conversation.owner;
  const waiting = conversation.status === "open" && owner === "none";
  const since = conversation.waiting_since || conversation.handover_at || conversation.updated_at;
  return h("li", { class: "row-item" },
    h("a", {
      class: `row${open ? " is-open" : ""}${waiting ? " is-waiting" : ""}`,
      href: `${store.label ? `#/labels/${store.label}` : `#/inbox/${store.view}`}/${conversation.id}`
        + `${result && result.message_id ? `/${result.message_id}` : ""}`,
      "aria-current": open ? "true" : null,
      dataset: { conversation: conversation.id, owner },
    },
    avatar(name, String(conversation.contact || conversation.id)),
    h("div", { class: "row-main" },
      h("div", { class: "row-top" },
        h("span", { class: "row-name", text: name }),
        h("time", { class: "row-time", dataset: { since: conversation.last_message_at || conversation.updated_at },
          text: ago(conversation.last_message_at || conversation.updated_at) })),
      result && result.message ? h("p", { class: "row-preview row-match" },
        h("span", { class: "row-preview-who", text: `${whoWrote(result.message)}: ` }), result.message.text) : null,
      result && result.message ? null : h("p", { class: "row-preview" },
        conversation.last_author && conversation.last_author !== "customer"
          ? h("span", { class: "row-preview-who", text: `${conversation.last_author === "ai" ? aiName() : "Team"}: ` }) : null,
        conversation.last_text || "No messages yet"),
      h("div", { class: "row-chips" },
        channelChip(conversation),
        h("span", { class: `chip chip-owner${owner === "ai" ? " chip-ai" : isMine(owner) ? " chip-mine" : ""}` },
          icon(owner === "ai" ? "sparkles" : owner === "none" ? "clock" : "user"),
          conversation.status === "closed" ? "Closed" : ownerLabel(owner)),
        waiting ? h("span", { class: "chip chip-wait", title: "Waiting for a human since the handover" },
          "Waiting ", h("span", { dataset: { waited: since }, text: waited(since) })) : null,
        waiting && conversation.after_hours ? h("span", { class: "chip chip-after-hours",
          title: "Handed over while the team was out", text: "After hours" }) : null,
        slaChip(conversation)))));
}

/** The response target that runs (sla:): the time left to answer, or how far past it the chat is. */
function slaChip(conversation) {
  if (conversation.status !== "open" || !conversation.sla_due) return null;
  const due = conversation.sla_due;
  const what = conversation.sla_kind === "next" ? "the customer's next answer" : "the first human answer";
  const chip = h("span", { class: "chip chip-sla", dataset: { due, breached: conversation.sla_breached ? "1" : "" },
    title: `Response target for ${what}: due ${new Date(due).toLocaleString()}` });
  renderDue(chip);
  return chip;
}

function renderDue(chip, now = Date.now()) {
  const due = Number(chip.dataset.due);
  const late = chip.dataset.breached === "1" || now >= due;
  chip.classList.toggle("is-late", late);
  chip.textContent = late ? `Overdue ${waited(due, now)}` : `Reply in ${waited(now - (due - now), now)}`;
}

function whoWrote(message) {
  if (message.kind === "note") return "Note";
  return { customer: "Customer", ai: aiName(), agent: "Team" }[message.author] || "System";
}

function channelChip(conversation) {
  const type = channelType(conversation.channel_type);
  return h("span", { class: "chip chip-channel", title: `${type.label} channel “${conversation.channel}”`,
    dataset: { channelType: conversation.channel_type || "" } },
  icon(type.icon), h("span", { class: "sr-only", text: `${type.label}: ` }), conversation.channel);
}

/** Refresh every relative time on the page without reloading anything. */
export function tickTimes(root = document) {
  for (const el of root.querySelectorAll("[data-since]")) el.textContent = ago(Number(el.dataset.since));
  for (const el of root.querySelectorAll("[data-waited]")) el.textContent = waited(Number(el.dataset.waited));
  for (const el of root.querySelectorAll(".chip-sla[data-due]")) renderDue(el);
}
