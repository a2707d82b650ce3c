// Key Vault for the Teams webhook URL: whoever holds that URL can post into the channel, so it never appears in
// app settings, only a Key Vault reference to it does.
param name string
param location string
param tags object
@secure()
param teamsWebhookUrl string
param readerPrincipalId string

var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var teamsWebhookSecretName = 'teams-webhook-url'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // App Service resolves Key Vault references over the vault's public endpoint unless the app is VNet-integrated,
  // which this template is not. Access is RBAC-only: one Secrets User assignment for the app's identity.
  // checkov:skip=CKV_AZURE_109: a closed vault firewall would break the app's Key Vault reference (no VNet integration)
  // checkov:skip=CKV_AZURE_189: public endpoint needed to resolve the Key Vault reference (no VNet integration)
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// A module rather than a conditional resource: checkov cannot see the properties of a conditional resource.
module teamsWebhookSecret 'teams-webhook-secret.bicep' = if (!empty(teamsWebhookUrl)) {
  name: 'remediator-teams-webhook-secret'
  params: {
    vaultName: vault.name
    secretName: teamsWebhookSecretName
    teamsWebhookUrl: teamsWebhookUrl
  }
}

// Read access to secrets of this vault only, for the app's Key Vault references.
resource secretsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
// Versionless, so a rotated secret is picked up without redeploying. Empty when no URL was given.
output teamsWebhookSecretUri string = empty(teamsWebhookUrl) ? '' : '${vault.properties.vaultUri}secrets/${teamsWebhookSecretName}'
