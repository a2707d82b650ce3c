// The remediator: a Python 3.11 Function App on a Flex Consumption plan, running as the user-assigned identity.
// Flex declares its runtime in functionAppConfig, so FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
// WEBSITE_RUN_FROM_PACKAGE are deliberately absent from the app settings.
param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param identityPrincipalId string
param storageAccountName string
param deploymentContainerUrl string
param applicationInsightsConnectionString string
param teamsWebhookSecretUri string
param auditEventGridEndpoint string
param remediationConfigPath string
param remediationMode string
param sweepSchedule string
param sweepConcurrency int
param instanceMemoryMB int
param maximumInstanceCount int

resource flexPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex zone redundancy is regional; an outage delays remediation, the nightly sweep catches up
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource remediatorApp 'Microsoft.Web/sites@2024-04-01' = {
  // The app serves no HTTP routes; its only inbound traffic is Event Grid calling the trigger's webhook.
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the function over its public endpoint (no VNet in this template)
  // checkov:skip=CKV_AZURE_17: Event Grid cannot present client certificates; its webhook is authenticated by a system key
  // checkov:skip=CKV_AZURE_212: Flex scales from zero per function; an instance floor would bill all day for minutes of work
  // checkov:skip=CKV_AZURE_213: health check probes an HTTP path, and this app has no HTTP functions
  name: appName
  location: location
  // azd finds the app to deploy to by this tag (service "remediator" in azure.yaml).
  tags: union(tags, {
    'azd-service-name': 'remediator'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: flexPlan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Host storage through the identity: account name + credential + client ID, no connection string.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // DefaultAzureCredential picks the user-assigned identity by this client ID.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'REMEDIATOR_PRINCIPAL_ID'
          value: identityPrincipalId
        }
        {
          name: 'REMEDIATION_CONFIG'
          value: remediationConfigPath
        }
        {
          name: 'REMEDIATION_MODE'
          value: remediationMode
        }
        {
          name: 'SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'SWEEP_CONCURRENCY'
          value: string(sweepConcurrency)
        }
        {
          name: 'TEAMS_WEBHOOK_URL'
          value: empty(teamsWebhookSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})'
        }
        {
          name: 'AUDIT_EVENTGRID_ENDPOINT'
          value: auditEventGridEndpoint
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output id string = remediatorApp.id
output name string = remediatorApp.name
