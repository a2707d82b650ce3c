// The Event Grid system topic of one subscription's ARM events. Its system-assigned identity writes
// undeliverable events to the dead-letter container (shared keys are disabled on that storage account).
param name string
param sourceSubscriptionId string
param tags object

resource armEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: '/subscriptions/${sourceSubscriptionId}'
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

output name string = armEvents.name
output principalId string = armEvents.identity.principalId
