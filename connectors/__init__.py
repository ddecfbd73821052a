"""Channel connectors bundled with Baton; they register through the same hooks as third-party plugins."""
