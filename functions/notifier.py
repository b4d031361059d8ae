"""Notifier: a timer trigger (``%NOTIFY_SCHEDULE%``, every minute by default) that
delivers the notifications the state changes wrote to their outbox, to the configured
webhooks and Event Grid topic (shared/notify does the work)."""
import logging

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(schedule="%NOTIFY_SCHEDULE%", arg_name="timer", run_on_startup=False)
def notifier(timer: func.TimerRequest) -> None:
    from shared.context import get_context
    from shared.notify import run_notifier

    if timer.past_due:
        logging.info("notifier: this run is past due; it catches up on every pending notification")
    run_notifier(get_context())  # logs its report when it sent, failed, deleted or gave up anything
