#!/bin/sh
# azd postdeploy hook: subscribe the blob trigger `intake` to BlobCreated events.
#
# The Event Grid-based blob trigger is fed by an Event Grid subscription on the
# storage account's system topic, delivered to the Functions blob extension's
# webhook. That webhook URL carries the app's `blobs_extension` system key, which
# exists only once the deployed code has started, so Bicep cannot create the
# subscription: this hook does, after every `azd deploy` / `azd up`. It is
# idempotent (a PUT of the same subscription) and never prints the key.
#
# Reads (from the azd environment, i.e. the outputs of infra/main.bicep):
#   AZURE_RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME, AZURE_FUNCTION_APP_HOST,
#   EVENTGRID_SYSTEM_TOPIC_ID, AZURE_STORAGE_ACCOUNT_ID, DATASETS_CONTAINER,
#   EVENTGRID_DEADLETTER_CONTAINER
# Optional: POSTDEPLOY_KEY_ATTEMPTS (default 20), POSTDEPLOY_RETRY_SECONDS (default 15).
# Needs: az (Azure CLI, logged in to the same tenant as azd).
set -eu

FUNCTION_NAME="intake"
SUBSCRIPTION_NAME="intake-blob-created"
EVENTGRID_API_VERSION="2025-02-15"

# azd exports its environment to hooks; when run by hand, read it from azd.
if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
    values_file=$(mktemp)
    azd env get-values > "$values_file"
    while IFS='=' read -r key value; do
        case "$key" in
            ''|\#*) continue ;;
        esac
        value=$(printf '%s' "$value" | sed -e 's/^"//' -e 's/"$//')
        export "$key=$value"
    done < "$values_file"
    rm -f "$values_file"
fi

missing=""
for name in AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_FUNCTION_APP_HOST \
            EVENTGRID_SYSTEM_TOPIC_ID AZURE_STORAGE_ACCOUNT_ID DATASETS_CONTAINER \
            EVENTGRID_DEADLETTER_CONTAINER; do
    eval "current=\${$name:-}"
    [ -n "$current" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
    echo "postdeploy: missing azd environment values:$missing (run 'azd provision' first)" >&2
    exit 1
fi
if ! command -v az >/dev/null 2>&1; then
    echo "postdeploy: the Azure CLI (az) is required to create the Event Grid subscription" >&2
    exit 1
fi

# The system key appears once the host has loaded the blob extension: wait for it.
attempts="${POSTDEPLOY_KEY_ATTEMPTS:-20}"
delay="${POSTDEPLOY_RETRY_SECONDS:-15}"
key=""
i=1
while [ "$i" -le "$attempts" ]; do
    key=$(az functionapp keys list \
        --resource-group "$AZURE_RESOURCE_GROUP" \
        --name "$AZURE_FUNCTION_APP_NAME" \
        --query "systemKeys.blobs_extension" \
        --output tsv 2>/dev/null || true)
    [ -n "$key" ] && break
    echo "postdeploy: waiting for the blobs_extension key of $AZURE_FUNCTION_APP_NAME ($i/$attempts)"
    i=$((i + 1))
    [ "$i" -le "$attempts" ] && sleep "$delay"
done
if [ -z "$key" ]; then
    echo "postdeploy: $AZURE_FUNCTION_APP_NAME has no blobs_extension system key; is the blob trigger '$FUNCTION_NAME' deployed and using source=EventGrid? Run 'azd deploy' again once it is." >&2
    exit 1
fi

endpoint="https://${AZURE_FUNCTION_APP_HOST}/runtime/webhooks/blobs?functionName=Host.Functions.${FUNCTION_NAME}&code=${key}"

# The body goes through a private temporary file, so the key never appears on a
# command line (visible to other processes) or in the output.
umask 077
body=$(mktemp)
trap 'rm -f "$body"' EXIT
trap 'exit 1' INT TERM
cat > "$body" <<JSON
{
  "properties": {
    "destination": {
      "endpointType": "WebHook",
      "properties": {
        "endpointUrl": "${endpoint}",
        "maxEventsPerBatch": 1,
        "preferredBatchSizeInKilobytes": 64
      }
    },
    "filter": {
      "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
      "subjectBeginsWith": "/blobServices/default/containers/${DATASETS_CONTAINER}/",
      "isSubjectCaseSensitive": false
    },
    "eventDeliverySchema": "EventGridSchema",
    "retryPolicy": {
      "maxDeliveryAttempts": 30,
      "eventTimeToLiveInMinutes": 1440
    },
    "deadLetterWithResourceIdentity": {
      "identity": {
        "type": "SystemAssigned"
      },
      "deadLetterDestination": {
        "endpointType": "StorageBlob",
        "properties": {
          "resourceId": "${AZURE_STORAGE_ACCOUNT_ID}",
          "blobContainerName": "${EVENTGRID_DEADLETTER_CONTAINER}"
        }
      }
    }
  }
}
JSON

echo "postdeploy: subscribing $FUNCTION_NAME to BlobCreated in container '$DATASETS_CONTAINER'"
az rest --method put \
    --url "${EVENTGRID_SYSTEM_TOPIC_ID}/eventSubscriptions/${SUBSCRIPTION_NAME}?api-version=${EVENTGRID_API_VERSION}" \
    --headers "Content-Type=application/json" \
    --body "@${body}" \
    --output none
echo "postdeploy: Event Grid subscription '$SUBSCRIPTION_NAME' is in place"
