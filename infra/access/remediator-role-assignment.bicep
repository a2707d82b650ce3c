// The remediator role on one resource group the configuration names (hub, spoke or AKS node resource group).
// Deployed once per resource group with `scope: resourceGroup(...)`; the assignment takes the scope of the
// deployment (no `scope` property), so the identity never holds the role on a subscription.
targetScope = 'resourceGroup'

param roleDefinitionId string
param principalId string

resource remediatorOnResourceGroup 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'AKS Egress Remediator: restore the egress baseline in this resource group'
  }
}
