"""Editing a contact: an agent corrects or completes the details a customer left (name, email, phone)."""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest
from gateway.handover import fallback, search
from gateway.handover.store import Store

EDITABLE = ("name", "email", "phone")


def clean(changes: dict[str, Any]) -> dict[str, str]:
    """The fields to change, normalised ('' clears one); BadRequest naming each bad field."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise BadRequest(f"only {', '.join(EDITABLE)} can be edited, not {', '.join(sorted(unknown))}")
    if not changes:
        raise BadRequest(f"say what to change: {', '.join(EDITABLE)}")
    errors = {name: "must be a string" for name, value in changes.items() if not isinstance(value, str)}
    if errors:
        raise BadRequest("the contact details are not valid", fields=errors)
    found = {name: str(value).strip() for name, value in changes.items()}
    errors = {name: f"at most {fallback.LIMITS[name]} characters" for name, value in found.items()
              if len(value) > fallback.LIMITS[name]}
    checks = {"email": fallback._email, "phone": fallback._phone}  # noqa: SLF001 - the contact form's own rules
    for name, check in checks.items():
        if found.get(name) and name not in errors:
            found[name], problem = check(found[name])
            errors.update({name: problem} if problem else {})
    if errors:
        raise BadRequest("the contact details are not valid", fields=errors)
    return found


def edit(store: Store, workspace_id: str, contact_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
    """Change a contact's details; its search terms follow in the same step. The contact as it is now."""
    fields = clean(changes)
    contact = store.contact(workspace_id, contact_id)
    after = {**contact, **fields}
    numbers = [identity.split(":", 1)[-1] for identity in contact.get("identities", [])]
    terms = search.customer_terms(after.get("name", ""), after.get("email", ""), after.get("phone", ""),
                                  contact.get("profile_name", ""), *(n for n in numbers if n.lstrip("+").isdigit()))
    store.run("contact_update", workspace_id, contact=contact_id, fields=fields, terms=terms, actor=actor,
              expect=contact.get("updated_at"))
    return store.contact(workspace_id, contact_id)
