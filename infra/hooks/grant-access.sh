#!/bin/sh
# azd postprovision hook: give the remediator identity its network permissions (infra/access.bicep).
# Kept out of the azd deployment on purpose: `azd down` deletes every resource group that deployment touched,
# and the hub, spoke and node resource groups belong to the platform team.
set -eu

if [ -z "${REMEDIATED_RESOURCE_GROUP_IDS:-}" ]; then
  echo "grant-access: name the resource groups to remediate first, e.g." >&2
  echo "  azd env set REMEDIATED_RESOURCE_GROUP_IDS '[\"/subscriptions/<id>/resourceGroups/<hub>\", ...]'" >&2
  exit 1
fi
: "${REMEDIATOR_PRINCIPAL_ID:?is not set: run azd provision first}"

az account show --output none || {
  echo "grant-access: the hooks use the Azure CLI; run 'az login' (azd auth login is not enough)" >&2
  exit 1
}

# A new role definition can take a minute to be visible to role assignments: try again before giving up.
attempt=1
until az deployment sub create \
  --subscription "$AZURE_SUBSCRIPTION_ID" \
  --location "$AZURE_LOCATION" \
  --name "${AZURE_ENV_NAME}-access" \
  --template-file infra/access.bicep \
  --parameters environmentName="$AZURE_ENV_NAME" \
               principalId="$REMEDIATOR_PRINCIPAL_ID" \
               remediatedResourceGroupIds="$REMEDIATED_RESOURCE_GROUP_IDS" \
               auditEventGridTopicId="${AUDIT_EVENTGRID_TOPIC_ID:-}" \
  --output none
do
  if [ "$attempt" -ge 3 ]; then
    exit 1
  fi
  attempt=$((attempt + 1))
  echo "grant-access: retrying in 60 s (attempt $attempt of 3)" >&2
  sleep 60
done
