"""Non-channel plugins bundled with Baton (the offline model, the webhook notifier)."""
