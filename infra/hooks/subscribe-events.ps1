# azd postdeploy hook (Windows): the same as subscribe-events.sh. Parameters go through a file because
# PowerShell mangles the quotes of JSON arguments passed to native commands.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_FUNCTION_APP_ID) {
  Write-Error 'subscribe-events: AZURE_FUNCTION_APP_ID is not set: run azd provision first'
}
az account show --output none
if ($LASTEXITCODE -ne 0) {
  Write-Error "subscribe-events: the hooks use the Azure CLI; run 'az login' (azd auth login is not enough)"
}

$extraWatchedSubscriptionIds = if ($env:EXTRA_WATCHED_SUBSCRIPTION_IDS) { $env:EXTRA_WATCHED_SUBSCRIPTION_IDS } else { '[]' }
$parameters = @{
  environmentName              = @{ value = $env:AZURE_ENV_NAME }
  location                     = @{ value = $env:AZURE_LOCATION }
  appResourceGroupName         = @{ value = $env:AZURE_RESOURCE_GROUP }
  functionAppId                = @{ value = $env:AZURE_FUNCTION_APP_ID }
  systemTopicName              = @{ value = $env:EVENT_GRID_SYSTEM_TOPIC_NAME }
  deadLetterStorageAccountName = @{ value = $env:EVENT_GRID_DEAD_LETTER_STORAGE_ACCOUNT }
  deadLetterContainerName      = @{ value = $env:EVENT_GRID_DEAD_LETTER_CONTAINER }
  extraWatchedSubscriptionIds  = @{ value = @(ConvertFrom-Json $extraWatchedSubscriptionIds) }
}
$parameterFile = New-TemporaryFile
$parameterDocument = @{
  '$schema'      = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#'
  contentVersion = '1.0.0.0'
  parameters     = $parameters
}
ConvertTo-Json $parameterDocument -Depth 6 | Set-Content -Path $parameterFile

# The host indexes the functions of a new package within a minute or two; until then Event Grid reports the
# destination as missing.
for ($attempt = 1; $attempt -le 3; $attempt++) {
  az deployment sub create `
    --subscription $env:AZURE_SUBSCRIPTION_ID `
    --location $env:AZURE_LOCATION `
    --name "$($env:AZURE_ENV_NAME)-events" `
    --template-file infra/events.bicep `
    --parameters "@$parameterFile" `
    --output none
  if ($LASTEXITCODE -eq 0) { exit 0 }
  if ($attempt -lt 3) {
    Write-Warning "subscribe-events: retrying in 60 s (attempt $($attempt + 1) of 3)"
    Start-Sleep -Seconds 60
  }
}
exit 1
