"""Azure Functions entry points (Python v2 programming model).

Wiring only: every trigger calls into ``remediation``, where the logic lives.
"""

import azure.functions as func

app = func.FunctionApp()
