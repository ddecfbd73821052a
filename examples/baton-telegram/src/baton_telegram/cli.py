"""`baton-telegram set-webhook --url https://support.example.com/webhooks/telegram`: point the bot's updates at
Baton, signed with the channel's secret token; `baton-telegram webhook-info`: what Telegram has.

The bot token and the secret come from TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET (the same variables the
channel's settings read in config.yaml), or from --bot-token / --secret-token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from gateway.plugin import SendFailed
from pydantic import ValidationError

from baton_telegram.connector import Telegram, TelegramSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baton-telegram", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bot-token", default=os.environ.get("TELEGRAM_BOT_TOKEN", ""),
                        help="the bot's token (default: $TELEGRAM_BOT_TOKEN)")
    parser.add_argument("--secret-token", default=os.environ.get("TELEGRAM_WEBHOOK_SECRET", ""),
                        help="the channel's secret_token (default: $TELEGRAM_WEBHOOK_SECRET)")
    parser.add_argument("--api-base-url", default=os.environ.get("TELEGRAM_API_BASE_URL", "https://api.telegram.org"))
    actions = parser.add_subparsers(dest="action", required=True)
    set_webhook = actions.add_parser("set-webhook", help="send the bot's updates to Baton (setWebhook)")
    set_webhook.add_argument("--url", required=True,
                             help="the channel's webhook: <public_url>/webhooks/<channel name>")
    set_webhook.add_argument("--drop-pending-updates", action="store_true",
                             help="forget the updates Telegram holds for the bot")
    actions.add_parser("webhook-info", help="what Telegram has for the bot's webhook (getWebhookInfo)")
    args = parser.parse_args(argv)
    try:
        settings = TelegramSettings.model_validate({"bot_token": args.bot_token, "secret_token": args.secret_token,
                                                    "api_base_url": args.api_base_url})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"baton-telegram: {problems}", file=sys.stderr)
        return 2
    bot = Telegram("telegram", settings)
    try:
        if args.action == "set-webhook":
            if not args.url.startswith("https://"):
                print("baton-telegram: warning: Telegram delivers webhooks to https:// URLs only", file=sys.stderr)
            bot.set_webhook(args.url, drop_pending_updates=args.drop_pending_updates)
            print(f"webhook set: {args.url} (secret token checked on every update)")
        else:
            print(json.dumps(bot.webhook_info(), indent=2, sort_keys=True))
    except SendFailed as exc:
        print(f"baton-telegram: {exc.reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
