"""What each citizen message does: one module per kind of message, plus search.

routes.build_router registers the handlers in order; search/ is the question index behind
bot.search_api.Search. Handlers import bot's foundation (and push's subscription domain),
never the composition root. Importing this package imports nothing else.
"""
