"""Keeper: a timer trigger (``%KEEPER_SCHEDULE%``, hourly by default) that keeps
fine-tuned deployments from being deleted by Azure's idle rule (shared/keeper.py
does the work)."""
import logging

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(schedule="%KEEPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
def keeper(timer: func.TimerRequest) -> None:
    from shared.context import get_context
    from shared.keeper import run_keeper

    if timer.past_due:
        logging.info("keeper: this run is past due")
    report = run_keeper(get_context())
    logging.info("keeper %s", report.summary())
