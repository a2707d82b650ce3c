// Everything the remediator may do outside its own resource group, in one file for review:
// - a custom role with exactly the actions in remediator-role.json, assignable only on the resource groups the
//   remediation configuration names (hub, spoke, AKS node resource groups), and assigned on each of them;
// - when an audit topic is configured, the right to send events to that one topic.
//
// Deployed by the postprovision hook (infra/hooks/grant-access.*), not by main.bicep: `azd down` deletes every
// resource group in which the azd deployment created anything, and these resource groups are not ours.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the role so that several environments can coexist.')
param environmentName string

@description('Principal (object) ID of the remediator identity (main.bicep output REMEDIATOR_PRINCIPAL_ID).')
param principalId string

@minLength(1)
@description('Resource IDs of the resource groups the remediation configuration names: /subscriptions/<id>/resourceGroups/<name>.')
param remediatedResourceGroupIds array

@description('Resource ID of the Event Grid custom topic for the audit trail. Empty: none.')
param auditEventGridTopicId string = ''

var remediatorRole = loadJsonContent('remediator-role.json')
// ARM evaluates the scope of a module even when its condition is false, so never split an empty ID.
var auditTopicSegments = split(empty(auditEventGridTopicId) ? '${subscription().id}/resourceGroups/none/providers/Microsoft.EventGrid/topics/none' : auditEventGridTopicId, '/')

// The only network permissions the remediator has; the action list is data so that a test can compare it with
// the requests the product actually makes.
resource remediatorRoleDefinition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'aks-egress-remediator', environmentName)
  properties: {
    roleName: 'AKS Egress Remediator (${environmentName})'
    description: remediatorRole.description
    type: 'CustomRole'
    assignableScopes: remediatedResourceGroupIds
    permissions: [
      {
        actions: remediatorRole.actions
        notActions: remediatorRole.notActions
        dataActions: remediatorRole.dataActions
        notDataActions: remediatorRole.notDataActions
      }
    ]
  }
}

module remediatorOnResourceGroups 'access/remediator-role-assignment.bicep' = [for (resourceGroupId, i) in remediatedResourceGroupIds: {
  name: 'remediator-access-${i}-${uniqueString(resourceGroupId)}'
  scope: resourceGroup(split(resourceGroupId, '/')[2], split(resourceGroupId, '/')[4])
  params: {
    roleDefinitionId: remediatorRoleDefinition.id
    principalId: principalId
  }
}]

module auditTopicSender 'access/audit-topic-sender.bicep' = if (!empty(auditEventGridTopicId)) {
  name: 'remediator-audit-topic-sender'
  scope: resourceGroup(auditTopicSegments[2], auditTopicSegments[4])
  params: {
    topicName: last(auditTopicSegments)
    principalId: principalId
  }
}

output REMEDIATOR_ROLE_DEFINITION_ID string = remediatorRoleDefinition.id
