"""One keeper tick on the simulator's clock, in a process of its own (so a test can kill
it in the middle of a redeploy): ``python -m tests.reliability.keeper_tick``.
Settings come from the environment; ``SIM_URL`` and ``SIM_CA`` name the simulator."""
from __future__ import annotations

import logging
import os
import sys


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    from devstack.scenarios import sim_time
    from devstack.simulator.process import AdminClient
    from shared.context import get_context
    from shared.keeper import Keeper

    admin = AdminClient(os.environ["SIM_URL"], os.environ["SIM_CA"])
    report = Keeper(get_context()).tick(now=sim_time(admin), sleep=admin.advance)
    print(report.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
