#!/bin/sh
# azd postdeploy hook: subscribe on_resource_change to the ARM events of every watched subscription
# (infra/events.bicep). It runs after the code is deployed because Event Grid refuses an Azure Function
# destination that does not exist yet.
set -eu

: "${AZURE_FUNCTION_APP_ID:?is not set: run azd provision first}"

az account show --output none || {
  echo "subscribe-events: the hooks use the Azure CLI; run 'az login' (azd auth login is not enough)" >&2
  exit 1
}

# The host indexes the functions of a new package within a minute or two; until then Event Grid reports the
# destination as missing.
attempt=1
until az deployment sub create \
  --subscription "$AZURE_SUBSCRIPTION_ID" \
  --location "$AZURE_LOCATION" \
  --name "${AZURE_ENV_NAME}-events" \
  --template-file infra/events.bicep \
  --parameters environmentName="$AZURE_ENV_NAME" \
               location="$AZURE_LOCATION" \
               appResourceGroupName="$AZURE_RESOURCE_GROUP" \
               functionAppId="$AZURE_FUNCTION_APP_ID" \
               systemTopicName="$EVENT_GRID_SYSTEM_TOPIC_NAME" \
               deadLetterStorageAccountName="$EVENT_GRID_DEAD_LETTER_STORAGE_ACCOUNT" \
               deadLetterContainerName="$EVENT_GRID_DEAD_LETTER_CONTAINER" \
               extraWatchedSubscriptionIds="${EXTRA_WATCHED_SUBSCRIPTION_IDS:-[]}" \
  --output none
do
  if [ "$attempt" -ge 3 ]; then
    exit 1
  fi
  attempt=$((attempt + 1))
  echo "subscribe-events: retrying in 60 s (attempt $attempt of 3)" >&2
  sleep 60
done
