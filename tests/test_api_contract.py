"""The OpenAPI contract: schemathesis generates requests from /api/v1/openapi.json and sends
them to the console app in-process (WSGI, loopback only, no network), as an admin token (the
role that reaches every endpoint). Every answer must be documented (status, content type,
body schema) and none may be a 5xx. A few examples per operation keep it well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from sqlalchemy import select

from bot.store.models import Staff
from push import actions
from tests.conftest import load_pack
from tests.consolekit import console_app, make_staff

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance]
EXAMPLES = 5  # per operation and mode: the whole test stays well under a minute


@pytest.fixture
def contract(runtime):
    """(schema loaded from the live app, the admin token's headers)."""
    load_pack(runtime)
    app = console_app(runtime)
    admin = make_staff(runtime, "contract-admin", "admin")
    with runtime.sessions() as s:
        actor = s.scalar(select(Staff).where(Staff.id == admin.id))
        secret = actions.create_api_token(s, runtime.settings, actor, runtime.now(), "contract",
                                          ["read", "write"]).secret
        s.commit()
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app), {
        "Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_contract(contract, mode):
    api_schema, headers = contract
    tried = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_contract(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        keeps_contract()
        tried += 1
    assert tried >= 25


def test_the_document_loads_and_covers_every_endpoint(contract):
    api_schema, _ = contract
    operations = [op.ok() for op in api_schema.get_all_operations()]
    paths = {(op.method.upper(), op.path) for op in operations}
    assert ("POST", "/api/v1/campaigns/{campaign_id}/approve") in paths
    assert ("GET", "/api/v1/audit") in paths
    assert len(paths) >= 25
