// After a conversation closes: "How did we do?" with five buttons (1 to 5) and an optional comment. Sent once
// the visitor picks a rating and presses Send; a new rating replaces the previous one on the server.

import { h } from "../inbox/dom.js";

const WORDS = ["Very bad", "Bad", "OK", "Good", "Great"];

/** submit(rating, comment) -> Promise; a rejected promise leaves the card as it was, with its error shown. */
export function renderRating(submit) {
  let chosen = 0;
  const status = h("p", { class: "bw-rating-status", role: "status", "aria-live": "polite" });
  const comment = h("textarea", { class: "bw-rating-comment", rows: "2", maxlength: "1000",
    placeholder: "Anything to add? (optional)", "aria-label": "Comment (optional)" });
  const send = h("button", { type: "button", class: "bw-rating-send", text: "Send", disabled: true });
  const stars = WORDS.map((word, index) => h("button", {
    type: "button", class: "bw-star", text: "★", title: word, "aria-label": `${index + 1}: ${word}`,
    "aria-pressed": "false", dataset: { rating: String(index + 1) },
  }));
  const card = h("li", { class: "bw-rating" },
    h("p", { class: "bw-rating-title", text: "How did we do?" }),
    h("div", { class: "bw-stars", role: "group", "aria-label": "Rating from 1 to 5" }, stars),
    comment, send, status);
  stars.forEach((star, index) => star.addEventListener("click", () => {
    chosen = index + 1;
    stars.forEach((other, i) => {
      other.classList.toggle("bw-star-on", i < chosen);
      other.setAttribute("aria-pressed", String(i < chosen));
    });
    status.textContent = WORDS[index];
    send.disabled = false;
  }));
  send.addEventListener("click", async () => {
    if (!chosen) return;
    send.disabled = true;
    status.textContent = "Sending…";
    try {
      await submit(chosen, comment.value.trim());
    } catch (error) {
      status.textContent = `Couldn't send your rating (${error.message}). Try again.`;
      send.disabled = false;
      return;
    }
    card.replaceChildren(h("p", { class: "bw-rating-title", text: "Thank you for your rating!" }),
      h("p", { class: "bw-rating-status", text: `${"★".repeat(chosen)} ${WORDS[chosen - 1]}` }));
    card.classList.add("bw-rated");
  });
  return card;
}
