"""The function app: creates the FunctionApp and registers one blueprint per trigger.

Each trigger module in ``functions/`` is thin: binding in, a call on the domain
code in ``shared/``, result out. Heavy SDKs are imported inside the domain code on
first use, so importing this module stays cheap (cold start on Flex Consumption).
"""
import azure.functions as func

from functions.intake import bp as intake_bp
from functions.jobs_api import bp as jobs_api_bp
from functions.monitor import bp as monitor_bp
from functions.keeper import bp as keeper_bp
from functions.notifier import bp as notifier_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(intake_bp)
app.register_functions(jobs_api_bp)
app.register_functions(monitor_bp)
app.register_functions(keeper_bp)
app.register_functions(notifier_bp)
