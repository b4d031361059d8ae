"""Intake: a blob dropped into the datasets container is validated and, when valid,
uploaded to Azure OpenAI (shared/intake.py does the work)."""
import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

bp = func.Blueprint()


@bp.blob_trigger(arg_name="client", path="%DATASETS_CONTAINER%/{name}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def intake(client: blob.BlobClient) -> None:
    from shared.context import get_context
    from shared.intake import process_blob

    result = process_blob(get_context(), client)
    logging.info("intake %s", result.to_dict())
