"""The web console for the media officer (see bot.web.app)."""
