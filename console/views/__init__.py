"""The console's blueprints, registered in this order by create_console_app."""

from __future__ import annotations

from console.views.accounts import bp as accounts
from console.views.audit import bp as audit
from console.views.auth import bp as auth
from console.views.campaigns import bp as campaigns
from console.views.cases import bp as cases
from console.views.content import bp as content
from console.views.departments import bp as departments
from console.views.home import bp as home
from console.views.questions import bp as questions
from console.views.tokens import bp as tokens

BLUEPRINTS = [auth, home, accounts, content, campaigns, questions, audit, tokens,
              cases, departments]  # casework (issue 10)
# the JSON API's blueprints are mounted by console.api.install (flask-smorest documents them)

# The navigation: (endpoint, label, roles that see it; () = every logged-in account).
# An entry whose endpoint is not registered is not shown. "casework" (issue 10): accounts with
# a casework role (Staff.case_roles), and admins.
NAV = [
    ("content.index", "内容", ()),
    ("campaigns.index", "推送", ()),
    ("questions.index", "群众提问", ()),
    ("cases.index", "办件", ("casework",)),
    ("audit.index", "审计日志", ("reviewer", "admin")),
    ("accounts.index", "账号", ("admin",)),
    ("departments.index", "办件设置", ("admin",)),
    ("tokens.index", "API 令牌", ()),
]
