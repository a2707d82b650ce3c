// The Teams webhook URL as a Key Vault secret (deployed only when a URL is given).
param vaultName string
param secretName string
@secure()
param teamsWebhookUrl string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource teamsWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: a Teams Workflows webhook URL does not expire; an expiry date here would only silence alerts
  parent: vault
  name: secretName
  properties: {
    value: teamsWebhookUrl
    contentType: 'text/uri-list'
  }
}
