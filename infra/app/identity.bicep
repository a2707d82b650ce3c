// The remediator's only identity: host storage, telemetry, Key Vault and ARM all see this principal, and the
// app skips ARM events whose caller is this principal (REMEDIATOR_PRINCIPAL_ID).
param name string
param location string
param tags object

resource remediatorIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = remediatorIdentity.id
output principalId string = remediatorIdentity.properties.principalId
output clientId string = remediatorIdentity.properties.clientId
