# azd postprovision hook (Windows): the same as grant-access.sh. Parameters go through a file because
# PowerShell mangles the quotes of JSON arguments passed to native commands.
$ErrorActionPreference = 'Stop'

if (-not $env:REMEDIATED_RESOURCE_GROUP_IDS) {
  Write-Error "grant-access: name the resource groups to remediate first, e.g. azd env set REMEDIATED_RESOURCE_GROUP_IDS '[""/subscriptions/<id>/resourceGroups/<hub>"", ...]'"
}
if (-not $env:REMEDIATOR_PRINCIPAL_ID) {
  Write-Error 'grant-access: REMEDIATOR_PRINCIPAL_ID is not set: run azd provision first'
}
az account show --output none
if ($LASTEXITCODE -ne 0) {
  Write-Error "grant-access: the hooks use the Azure CLI; run 'az login' (azd auth login is not enough)"
}

$parameters = @{
  environmentName            = @{ value = $env:AZURE_ENV_NAME }
  principalId                = @{ value = $env:REMEDIATOR_PRINCIPAL_ID }
  remediatedResourceGroupIds = @{ value = @(ConvertFrom-Json $env:REMEDIATED_RESOURCE_GROUP_IDS) }
  auditEventGridTopicId      = @{ value = "$env:AUDIT_EVENTGRID_TOPIC_ID" }
}
$parameterFile = New-TemporaryFile
$parameterDocument = @{
  '$schema'      = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#'
  contentVersion = '1.0.0.0'
  parameters     = $parameters
}
ConvertTo-Json $parameterDocument -Depth 6 | Set-Content -Path $parameterFile

# A new role definition can take a minute to be visible to role assignments: try again before giving up.
for ($attempt = 1; $attempt -le 3; $attempt++) {
  az deployment sub create `
    --subscription $env:AZURE_SUBSCRIPTION_ID `
    --location $env:AZURE_LOCATION `
    --name "$($env:AZURE_ENV_NAME)-access" `
    --template-file infra/access.bicep `
    --parameters "@$parameterFile" `
    --output none
  if ($LASTEXITCODE -eq 0) { exit 0 }
  if ($attempt -lt 3) {
    Write-Warning "grant-access: retrying in 60 s (attempt $($attempt + 1) of 3)"
    Start-Sleep -Seconds 60
  }
}
exit 1
