// After a conversation closes: "How did we do?" with five buttons (1 to 5) and an optional comment. Sent once
// the visitor picks a rating and presses Send; a new rating replaces the previous one on the server.

import { fill, h } from "../inbox/dom.js";
import { t } from "./i18n.js";

const word = (rating) => t(`rate_${rating}`);

/** submit(rating, comment) -> Promise; a rejected promise leaves the card as it was, with its error shown. */
export function renderRating(submit) {
  let chosen = 0;
  const status = h("p", { class: "bw-rating-status", role: "status", "aria-live": "polite" });
  const comment = h("textarea", { class: "bw-rating-comment", rows: "2",
    placeholder: t("rate_placeholder"), "aria-label": t("rate_comment") });
  const send = h("button", { type: "button", class: "bw-rating-send", text: t("rate_send"), disabled: true });
  const stars = [1, 2, 3, 4, 5].map((rating) => h("button", {
    type: "button", class: "bw-star", text: "★", title: word(rating), "aria-label": `${rating}: ${word(rating)}`,
    "aria-pressed": "false", dataset: { rating: String(rating) },
  }));
  const card = h("li", { class: "bw-rating" },
    h("p", { class: "bw-rating-title", text: t("rate_title") }),
    h("div", { class: "bw-stars", role: "group", "aria-label": t("rate_group") }, stars),
    comment, send, status);
  stars.forEach((star, index) => star.addEventListener("click", () => {
    chosen = index + 1;
    stars.forEach((other, i) => {
      other.classList.toggle("bw-star-on", i < chosen);
      other.setAttribute("aria-pressed", String(i < chosen));
    });
    status.textContent = word(chosen);
    send.disabled = false;
  }));
  send.addEventListener("click", async () => {
    if (!chosen) return;
    send.disabled = true;
    status.textContent = t("sending");
    try {
      await submit(chosen, comment.value.trim());
    } catch (error) {
      status.textContent = t("rate_failed", { why: error.message });
      send.disabled = false;
      return;
    }
    fill(card, h("p", { class: "bw-rating-title", text: t("rate_thanks") }),
      h("p", { class: "bw-rating-status", text: `${"★".repeat(chosen)} ${word(chosen)}` }));
    card.classList.add("bw-rated");
  });
  return card;
}
