// AKS Egress Remediator: the app and everything in its own resource group. This is what `azd provision`
// deploys, and all that `azd down` may delete.
//
// Two deployments live outside it, run by the hooks in azure.yaml (see docs/deploy.md):
// - access.bicep (postprovision): the custom role and its assignments on the hub, spoke and node resource
//   groups. `azd down` deletes every resource group in which its deployment created anything, so nothing of
//   this deployment may touch resource groups the platform team owns.
// - events.bicep (postdeploy): system topics and event subscriptions. Event Grid validates an Azure Function
//   destination when the subscription is created, so they can only exist once on_resource_change is deployed.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; part of every resource name and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Region of the resource group and every regional resource. It must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group for the app. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Path of the remediation configuration file inside the deployed package (REMEDIATION_CONFIG).')
param remediationConfigPath string = 'remediation.yaml'

// Audit until someone decides otherwise: a first deployment reports drift and changes nothing.
@allowed([
  'audit'
  'none'
])
@description('audit: REMEDIATION_MODE=audit, the app only reports whatever the file says; none: the configuration file\'s mode decides.')
param remediationModeOverride string = 'audit'

@description('NCRONTAB schedule (UTC) of the nightly sweep (SWEEP_SCHEDULE).')
param sweepSchedule string = '0 0 2 * * *'

@minValue(1)
@maxValue(32)
@description('Clusters reconciled in parallel by the sweep (SWEEP_CONCURRENCY).')
param sweepConcurrency int = 4

@secure()
@description('Teams Workflows webhook URL. Stored in Key Vault; empty: no Teams alerts.')
param teamsWebhookUrl string = ''

@description('Resource ID of an Event Grid custom topic for the audit trail (access.bicep grants the send right). Empty: no audit events.')
param auditEventGridTopicId string = ''

@allowed([
  512
  2048
  4096
])
@description('Memory of each Flex Consumption instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
@description('Upper bound of Flex Consumption instances.')
param maximumInstanceCount int = 40

@minValue(30)
@maxValue(730)
@description('Retention of the Log Analytics workspace, in days.')
param logRetentionInDays int = 30

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'
var systemTopicName = 'evgt-arm-${resourceToken}'

resource appResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'remediator-identity'
  scope: appResourceGroup
  params: {
    name: 'id-remediator-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'remediator-monitoring'
  scope: appResourceGroup
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    publisherPrincipalId: identity.outputs.principalId
  }
}

module storage 'app/storage.bicep' = {
  name: 'remediator-storage'
  scope: appResourceGroup
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    hostPrincipalId: identity.outputs.principalId
  }
}

module secrets 'app/secrets.bicep' = {
  name: 'remediator-secrets'
  scope: appResourceGroup
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    teamsWebhookUrl: teamsWebhookUrl
    readerPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'app/function-app.bicep' = {
  name: 'remediator-function-app'
  scope: appResourceGroup
  params: {
    planName: 'plan-${resourceToken}'
    appName: 'func-remediator-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    teamsWebhookSecretUri: secrets.outputs.teamsWebhookSecretUri
    // A read of the topic, not a deployment into its resource group (see the header).
    auditEventGridEndpoint: empty(auditEventGridTopicId) ? '' : reference(auditEventGridTopicId, '2022-06-15').endpoint
    remediationConfigPath: remediationConfigPath
    remediationMode: remediationModeOverride == 'audit' ? 'audit' : ''
    sweepSchedule: sweepSchedule
    sweepConcurrency: sweepConcurrency
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// Read by azd and by the hooks (infra/hooks), which pass them to access.bicep and events.bicep.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appResourceGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output REMEDIATOR_PRINCIPAL_ID string = identity.outputs.principalId
output REMEDIATOR_CLIENT_ID string = identity.outputs.clientId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsWorkspaceId
output KEY_VAULT_NAME string = secrets.outputs.name
output EVENT_GRID_SYSTEM_TOPIC_NAME string = systemTopicName
output EVENT_GRID_DEAD_LETTER_STORAGE_ACCOUNT string = storage.outputs.name
output EVENT_GRID_DEAD_LETTER_CONTAINER string = deadLetterContainerName
