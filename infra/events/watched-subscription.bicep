// A further subscription to watch: its system topic must live in that subscription, so it gets a resource
// group of its own there. Nothing else of the remediator is created in it.
targetScope = 'subscription'

param resourceGroupName string
param location string
param topicName string
param tags object

resource eventsResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'system-topic.bicep' = {
  name: 'remediator-system-topic'
  scope: eventsResourceGroup
  params: {
    name: topicName
    sourceSubscriptionId: subscription().subscriptionId
    tags: tags
  }
}

output resourceGroupName string = eventsResourceGroup.name
output topicName string = topic.outputs.name
output topicPrincipalId string = topic.outputs.principalId
