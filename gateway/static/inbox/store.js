// What the inbox knows: who is signed in, the team, the AI agent, contacts, and the current view.

export const store = {
  me: null, // {id, name, admin}
  workspace: "",
  team: new Map(), // agent id -> {id, name, admin}
  ai: null, // {name, model, published} or null when the workspace has none
  contacts: new Map(), // contact id -> contact
  counts: { mine: 0, waiting: 0, ai: 0, all: 0, closed: 0 },
  view: "mine",
  conversations: [],
  openId: null,
};

export const VIEWS = {
  mine: { title: "My Inbox", empty: "Nothing assigned to you. Conversations you take appear here." },
  waiting: { title: "Waiting for a human", empty: "No one is waiting. The AI is handling everything." },
  ai: { title: "AI", empty: "The AI isn't handling any conversation right now." },
  all: { title: "All", empty: "No open conversations." },
  closed: { title: "Closed", empty: "No closed conversations yet." },
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

export function customerName(conversation) {
  const contact = store.contacts.get(String(conversation.contact && conversation.contact.id || conversation.contact));
  if (contact && contact.name) return contact.name;
  if (conversation.profile_name) return conversation.profile_name;
  const sender = String(conversation.sender || "").replace(/^whatsapp:/, "");
  if (/^\+?\d{6,}$/.test(sender)) return sender;
  return `Visitor ${sender.slice(0, 4).toUpperCase() || conversation.id}`;
}

export function channelKind(conversation) {
  const name = `${conversation.channel || ""} ${conversation.sender || ""}`.toLowerCase();
  return name.includes("whatsapp") ? "whatsapp" : "webchat";
}
