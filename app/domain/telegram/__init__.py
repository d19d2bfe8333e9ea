"""The Telegram bot: linking chats, commands, and sending alerts and quiet-hours digests."""
