"""baton-telegram: a Telegram bot as a channel of Baton's shared inbox (a third-party Baton plugin)."""

from baton_telegram.connector import BATON_API_VERSION, Telegram, TelegramSettings

__all__ = ["BATON_API_VERSION", "Telegram", "TelegramSettings"]
__version__ = "0.1.0"
