"""Azure Functions entry points (Python v2 programming model).

Wiring only: each trigger hands its input to ``remediation.triggers``, where the one reconcile path
(observe, plan, apply, tell) lives. Importing this module imports no Azure SDK: the first invocation
does, so the host indexes the app quickly.
"""

import azure.functions as func

from remediation import triggers
from remediation.settings import sweep_schedule

app = func.FunctionApp()


@app.function_name("on_resource_change")
@app.event_grid_trigger(arg_name="event")
def on_resource_change(event: func.EventGridEvent) -> None:
    """An ARM change event: re-read the resource, restore the baseline if it drifted.

    A CloudEvents 1.0 delivery arrives here as a ``func.CloudEvent``; ``handle_delivery`` reads either.
    """
    triggers.handle_delivery(event)


@app.function_name("nightly_sweep")
@app.timer_trigger(arg_name="timer", schedule=sweep_schedule(), run_on_startup=False, use_monitor=True)
def nightly_sweep(timer: func.TimerRequest) -> None:
    """The backstop for lost or expired events: reconcile every configured cluster."""
    triggers.run_sweep(past_due=timer.past_due)
