// What the inbox knows: who is signed in, the team, the AI agent, contacts, and the current view.

export const store = {
  me: null, // {id, name, admin}
  workspace: "", // its id
  workspaceName: "",
  team: new Map(), // agent id -> {id, name, admin, presence, open}
  assignment: null, // {mode, capacity, source, file, queued}
  ai: null, // {name, model, published} or null when the workspace has none
  contacts: new Map(), // contact id -> contact
  counts: { mine: 0, waiting: 0, ai: 0, all: 0, closed: 0, overdue: 0, snoozed: 0 },
  view: "mine",
  conversations: [],
  nextCursor: null, // the view's next page, when there is one (Load more)
  listed: null, // the view `conversations` holds (null while its list is loading)
  listError: "", // why the list could not be read, while it is being tried again
  openId: null,
  search: null, // {query, status, results: [{conversation, message_id, message}], nextCursor, error} while searching
  label: null, // the label whose view is shown (a view of its own), else null
  labels: [], // the workspace's labels: [{name, color, conversations}]
  canned: [], // canned replies: [{shortcut, text}]
  cannedLoaded: false,
};

export const VIEWS = {
  mine: { title: "My Inbox", empty: "Nothing assigned to you. Conversations you take appear here." },
  waiting: { title: "Waiting for a human", empty: "No one is waiting. The AI is handling everything." },
  ai: { title: "AI", empty: "The AI isn't handling any conversation right now." },
  all: { title: "All", empty: "No open conversations." },
  closed: { title: "Closed", empty: "No closed conversations yet." },
  overdue: { title: "Past target", empty: "No customer is waiting past a response target." },
  snoozed: { title: "Snoozed", empty: "Nothing snoozed. A snoozed chat comes back when the customer writes or its time comes." },
};

export function aiName() {
  return (store.ai && store.ai.name) || "AI agent";
}

export function agentName(id) {
  const agent = store.team.get(id);
  return agent ? agent.name : id;
}

/** "ai" | "none" | "agent:<id>" as people read it. */
export function ownerLabel(owner) {
  if (owner === "ai") return `${aiName()} (AI)`;
  if (owner === "none" || !owner) return "Unassigned";
  if (owner.startsWith("agent:")) {
    const id = owner.slice(6);
    return store.me && id === store.me.id ? `${agentName(id)} (you)` : agentName(id);
  }
  return owner;
}

export function isMine(owner) {
  return Boolean(store.me) && owner === `agent:${store.me.id}`;
}

/** Who the customer is: the name they left, else what the server shows for them (their WhatsApp profile
 * name, their number, "Visitor 3f2a1b"). */
export function customerName(conversation) {
  const contact = conversation.contact;
  const known = (contact && typeof contact === "object" ? contact : null) || store.contacts.get(contactId(conversation));
  if (known && known.name) return known.name;
  return conversation.customer || conversation.address || `Conversation #${conversation.id}`;
}

/** The contact's id, whether the conversation carries the contact (details) or only its id (lists). */
export function contactId(conversation) {
  const contact = conversation.contact;
  return String((contact && typeof contact === "object" ? contact.id : contact) || "");
}

const CHANNEL_TYPES = {
  webchat: { label: "Webchat", icon: "globe" },
  twilio_whatsapp: { label: "WhatsApp", icon: "phone" },
};

/** How a channel type shows ({label, icon}), from the type the server reports, never from the name. */
export function channelType(type) {
  return CHANNEL_TYPES[type] || { label: type || "Channel", icon: "message" };
}

/** One of a contact's addresses as people read it: "+34612345678 · WhatsApp (support)". */
export function identityLabel(identity) {
  return `${identity.address} · ${channelType(identity.channel_type).label} (${identity.channel})`;
}
