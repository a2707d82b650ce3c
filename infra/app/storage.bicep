// Host storage of the Function App, its deployment package, and the Event Grid dead-letter container.
// Shared keys are disabled: the host, the deployment and Event Grid all authenticate with Entra identities.
param name string
param location string
param tags object
param deploymentContainerName string
param deadLetterContainerName string
param hostPrincipalId string

// The host needs blob access for its keys, timer locks and schedule status (Blob Data Owner, which also lets it
// create its containers) and tables for diagnostic events. Neither trigger the app uses (Event Grid, timer)
// touches queues, so Queue Data Contributor is not granted.
var hostRoleIds = [
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
]

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // The app has no VNet integration, so the host reaches this account over its public endpoint; access is Entra-only.
  // checkov:skip=CKV_AZURE_35: a deny-by-default network rule would lock out the Function host (no VNet integration)
  // checkov:skip=CKV_AZURE_59: public endpoint needed by the Function host (no VNet integration); shared keys are off
  // checkov:skip=CKV_AZURE_206: host state and package are rebuilt by the host and azd deploy; the sweep repairs lost events
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Event Grid writes events it could not deliver here; without it they would be dropped.
resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in hostRoleIds: {
  name: guid(hostStorage.id, hostPrincipalId, roleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: hostPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

output id string = hostStorage.id
output name string = hostStorage.name
output deploymentContainerUrl string = '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
