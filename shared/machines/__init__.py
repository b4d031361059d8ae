"""The service's life cycles, each a declared table of states run by one engine
(:mod:`.engine`): a dataset version (:mod:`.dataset`), a fine-tuning job (:mod:`.job`)
and a deployment (:mod:`.deployment`).

``python -m shared.machines`` prints the three state tables as the README shows them;
``python -m shared.machines --write README.md`` rewrites them there (a test keeps the
README and the code in step)."""
from __future__ import annotations


def machines():
    from .dataset import DATASET
    from .deployment import DEPLOYMENT
    from .job import JOB

    return {"dataset": DATASET, "job": JOB, "deployment": DEPLOYMENT}
