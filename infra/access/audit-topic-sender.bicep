// The audit trail goes to an existing Event Grid custom topic, published with the remediator identity: it may
// send events to that one topic and do nothing else with it.
targetScope = 'resourceGroup'

param topicName string
param principalId string

var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource auditTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: topicName
}

resource auditSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(auditTopic.id, principalId, eventGridDataSenderRoleId)
  scope: auditTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
