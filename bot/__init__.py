"""qzbot: the WeChat official-account service of 泉州市交通运输局. Nothing happens at import.

`bot` is the foundation (settings, clock, errors, runtime, store, content, the WeChat
protocol core, the citizen edge) plus the composition root (bot.app.create_app, bot.wsgi,
bot.worker, bot.cli), the only modules that import the feature packages. See ARCHITECTURE.md.
"""
