"""The Textual chat app of wsd-local (`wsd chat`).

Imports `wsd_local`; `wsd_local` never imports this package. Entry: `tui.app.WsdChatApp`,
registered as the `chat` subcommand by `tui.command.register`.
"""
