"""The dashboard for a Reader, in headless Chromium: the page works (its GETs), and a change
the Reader tries is refused with the API's own reason (a role too low), not the page's
guess about a missing function key. A runner of its own plays App Service authentication
(``LOCAL_PRINCIPAL``: bob, a Reader), over the root conftest's per-test tables; see
tests/jobs_api/test_roles.py for the API end to end."""
from __future__ import annotations

import pytest

from .conftest import BASE, ROOT, Page

READER = "bob@example.com:Reader"


@pytest.fixture
def reader_runner(app_env):
    from devstack.runner import LocalRunner, load_app
    from shared.context import get_context
    from shared.settings import get_settings

    runner = LocalRunner(load_app(), env=app_env, host_json=ROOT / "host.json", enable_timers=False,
                         enable_blobs=False, principal=READER)
    runner.start()
    get_settings.cache_clear()  # the app reads WEBSITE_AUTH_ENABLED (set by the runner) again
    get_context.cache_clear()
    yield runner
    runner.stop()
    get_settings.cache_clear()
    get_context.cache_clear()


def test_a_reader_sees_a_deployment_and_is_told_why_a_keep_alive_change_is_refused(reader_runner, ctx,
                                                                                 browser_context):
    from shared.state.repos import utc_iso

    name = "roles-dashboard"
    pk, rk = ctx.repos.deployment_keys(name)
    now = utc_iso()
    ctx.repos.deployments.insert({"PartitionKey": pk, "RowKey": rk, "name": name, "state": "active",
                                  "model": f"{BASE}.ft-0123456789abcdef0123456789abcdef-roles", "sku": "Standard",
                                  "capacity": 1, "keep_alive": "redeploy", "created_at": now, "updated_at": now})
    page = Page(browser_context.new_page())
    try:
        page.open(f"{reader_runner.base_url}/dashboard?refresh=0#/deployments/{name}")
        assert name in page.inner_text("main") and page.inner_text("#keep-alive-now") == "redeploy"
        page.select_option("#keep-alive", "none")
        page.evaluate("document.body.dataset.state = 'acting'")
        page.click("#keep-alive-save")
        page.ready()
        notice = page.inner_text("#notice")
        assert "Could not change the keep-alive" in notice, notice
        assert "needs the Operator role; bob@example.com holds Reader" in notice, notice
        assert "function key" not in notice   # the API's reason, not the page's guess about a missing key
        assert page.inner_text("#keep-alive-now") == "redeploy"
        assert ctx.repos.find_deployment(name)["keep_alive"] == "redeploy"
        # The one failed request the browser reports is that refused PATCH.
        assert [e for e in page.errors if "403" not in e] == [], page.errors
    finally:
        page.close()
