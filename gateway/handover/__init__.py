"""The product's core: who owns a conversation, and what happens on each change.

Where each behaviour of the product lives:

- a new conversation is the AI's, which answers at once     state.lua: inbound → dispatch.py → turn.py: run
- the customer asks for a person, and the AI hands over      turn.py: choose (Action.HAND_OVER) → lifecycle.hand_over
- the AI offers a person when it is not helping; "yes"      turn.py: should_offer, choose (Action.ACCEPT_OFFER)
- every human agent is notified of a handover               state.lua: hand_over (event, notification);
                                                            notifications.py
- a human takes the chat, sees the history, replies         lifecycle.py: assign, reply
- no human within 120 s: the contact form, into Contacts    fallback.py: fire_due, capture, answer_in_text
- a human hands back to the AI                              lifecycle.py: hand_back
- a human closes; the next message starts afresh            lifecycle.py: close; state.lua: inbound
- a human stops the AI at any time and takes over           lifecycle.py: unassign, reply
- the AI agent is unpublished                               lifecycle.py: set_published

Every change is one operation of state.lua (its header lists the states and transitions), reached through the
typed methods of store.py.
"""
