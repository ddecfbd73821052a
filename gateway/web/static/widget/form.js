// The contact form the no-human fallback sends. Its fields, their limits and which of them are required
// come from the server (the form message, updated by the channel's config); the browser adds only what
// the field's type means (an email address must look like one). The server checks everything again and
// its answer, field by field, is shown the same way.

import { fill, h } from "../inbox/dom.js";
import { t } from "./i18n.js";
import { bwIcon } from "./view.js";

const PLACEHOLDERS = { tel: "+44 20 7946 0958", email: "you@example.com" };
const AUTOCOMPLETE = { name: "name", tel: "tel", email: "email" };
const TYPE_PROBLEMS = { email: "bad_email", url: "bad_url" }; // the widget's words (i18n.js)

/** The form's fields: as the message sent them, with the channel's current settings on top, but the labels the
 * message gave (they are in the conversation's language; the channel's are the workspace's). */
export function formFields(message, config) {
  const current = new Map(((config && config.fields) || []).map((field) => [field.name, field]));
  const sent = (message.rich && message.rich.fields) || (config && config.fields) || [];
  return sent.filter((field) => field && field.name).map((field) => {
    const merged = { ...field, ...current.get(field.name) };
    return field.label ? { ...merged, label: field.label } : merged;
  });
}

/** submit(values) posts them; live() says whether the form still waits for an answer. */
export function renderForm(message, { fields, oneOf = [], submit, live }) {
  const formId = `bw-form-${String(message.id).replace(/[^\w-]/g, "")}`;
  const controls = {};
  const errors = {};
  const status = h("p", { class: "bw-form-status", role: "alert" });
  const button = h("button", { class: "bw-button", type: "submit", text: t("form_send") });
  const labels = fields.filter((field) => oneOf.includes(field.name)).map((field) => field.label || field.name);
  const form = h("form", { class: "bw-form", novalidate: true, "aria-labelledby": `${formId}-title` },
    h("p", { class: "bw-form-title", id: `${formId}-title`, text: t("form_title") }),
    h("p", { class: "bw-form-intro", text: message.text || "" }),
    fields.map((field) => {
      const id = `${formId}-${field.name}`;
      const control = renderControl(field, id);
      controls[field.name] = control;
      errors[field.name] = h("span", { class: "bw-field-error", id: `${id}-error` });
      control.addEventListener("input", () => clearProblem(control, errors[field.name], controls, status));
      return h("div", { class: "bw-field" },
        h("label", { for: id, text: field.label || field.name }), control, errors[field.name]);
    }),
    labels.length > 1
      ? h("p", { class: "bw-form-hint", text: t("one_is_enough", { labels: labels.join(` ${t("or")} `) }) }) : null,
    status, button);
  const item = h("li", { class: "bw-card", dataset: { id: message.id, kind: "contact_form" } }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!live()) {
      status.textContent = t("form_moot");
      return;
    }
    const values = {};
    for (const [name, control] of Object.entries(controls)) values[name] = control.value.trim();
    if (!showProblems(check(fields, controls, values, oneOf), controls, errors, status)) return;
    button.disabled = true;
    button.textContent = t("sending");
    try {
      await submit(values);
      fill(item, h("div", { class: "bw-form-done", role: "status" }, bwIcon("check"),
        h("div", {}, h("strong", { text: t("form_thanks") }),
          h("p", { text: fields.map((field) => values[field.name]).filter(Boolean).slice(0, 3).join(" · ") }))));
    } catch (error) {
      button.disabled = false;
      button.textContent = t("form_send");
      if (error.status === 400 && error.body.fields) showProblems(error.body.fields, controls, errors, status);
      else status.textContent = failure(error);
    }
  });
  return item;
}

/** The form is no longer wanted (the chat closed, or a person joined): keep its question, drop its fields. */
export function retireForm(item) {
  const intro = item.querySelector(".bw-form-intro");
  fill(item, h("div", { class: "bw-form-done bw-form-retired" },
    h("p", { text: intro ? intro.textContent : t("form_name") }),
    h("p", { class: "bw-divider-sub", text: t("form_closed") })));
}

function renderControl(field, id) {
  const attrs = {
    id, name: field.name, class: "bw-field-input", "aria-describedby": `${id}-error`,
    autocomplete: AUTOCOMPLETE[field.name] || AUTOCOMPLETE[field.type] || "off",
    maxlength: field.max_length || null, "aria-required": field.required ? "true" : null,
  };
  if (field.type === "textarea") return h("textarea", { ...attrs, rows: "3" });
  return h("input", { ...attrs, type: field.type || "text", placeholder: PLACEHOLDERS[field.type] || null,
    inputmode: field.type === "tel" ? "tel" : null });
}

function check(fields, controls, values, oneOf) {
  const problems = {};
  for (const field of fields) {
    const value = values[field.name];
    const label = field.label || field.name;
    if (field.required && !value) problems[field.name] = t("required", { label });
    else if (field.max_length && value.length > field.max_length) {
      problems[field.name] = t("at_most", { n: field.max_length });
    } else if (value && controls[field.name].validity && controls[field.name].validity.typeMismatch) {
      problems[field.name] = TYPE_PROBLEMS[field.type] ? t(TYPE_PROBLEMS[field.type])
        : t("check", { label: label.toLowerCase() });
    }
  }
  const named = fields.filter((field) => oneOf.includes(field.name));
  if (named.length && named.every((field) => !values[field.name])) {
    const labels = named.map((field) => (field.label || field.name).toLowerCase()).join(` ${t("or")} `);
    const text = t("leave", { labels });
    for (const field of named) problems[field.name] = problems[field.name] || text;
  }
  return problems;
}

function showProblems(problems, controls, errors, status) {
  let first = null;
  for (const [name, control] of Object.entries(controls)) {
    const problem = sentence(problems[name] || "");
    errors[name].textContent = problem;
    if (problem) {
      control.setAttribute("aria-invalid", "true");
      first = first || control;
    } else {
      control.removeAttribute("aria-invalid");
    }
  }
  const valid = !first && !Object.keys(problems).length;
  status.textContent = valid ? "" : t("check_fields");
  if (first) first.focus();
  return valid;
}

function clearProblem(control, error, controls, status) {
  if (control.getAttribute("aria-invalid") !== "true") return;
  control.removeAttribute("aria-invalid");
  error.textContent = "";
  if (!Object.values(controls).some((c) => c.getAttribute("aria-invalid") === "true")) status.textContent = "";
}

function failure(error) {
  if (error.status === 409) return t("form_gone");
  if (error.status === 401) return t("chat_ended");
  if (error.status === 429) return t("too_fast", { s: error.retryAfter ?? 5 });
  if (error.retryable) return t("form_failed");
  return sentence(error.message);
}

/** The server's reasons are lower-case phrases ("use the international format, …"): show them as sentences. */
function sentence(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}
