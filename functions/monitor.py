"""Monitor: a timer trigger (``%MONITOR_SCHEDULE%``, every 2 minutes by default) that
follows unfinished fine-tuning jobs and deploys succeeded models (shared/monitor.py
does the work)."""
import logging

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(schedule="%MONITOR_SCHEDULE%", arg_name="timer", run_on_startup=False)
def monitor(timer: func.TimerRequest) -> None:
    from shared.context import get_context
    from shared.monitor import run_monitor

    if timer.past_due:
        logging.info("monitor: this run is past due; it catches up on every open job")
    report = run_monitor(get_context())
    logging.info("monitor %s", {k: v for k, v in report.to_dict().items() if k != "transitions"})
