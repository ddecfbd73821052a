// Baton webchat widget (placeholder)
