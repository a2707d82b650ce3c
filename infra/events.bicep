// ARM events to on_resource_change: a system topic per watched subscription, each with an event subscription
// that lets through only what the remediator handles and dead-letters what it cannot deliver.
//
// Deployed by the postdeploy hook (infra/hooks/subscribe-events.*), after the code: Event Grid checks that an
// Azure Function destination exists when the subscription is created, and on_resource_change exists only once
// `azd deploy` has published it. Topics in other subscriptions stay out of the azd deployment so that
// `azd down` never goes looking for resource groups there.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group of the topic in each extra subscription.')
param environmentName string

@description('Region of the resource group created in each extra subscription.')
param location string

@description('The app\'s resource group (main.bicep output AZURE_RESOURCE_GROUP); the topic of this subscription goes there.')
param appResourceGroupName string

@description('Resource ID of the Function App (output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Name of every system topic (output EVENT_GRID_SYSTEM_TOPIC_NAME).')
param systemTopicName string

@description('Storage account receiving undeliverable events (output EVENT_GRID_DEAD_LETTER_STORAGE_ACCOUNT).')
param deadLetterStorageAccountName string

@description('Blob container receiving undeliverable events (output EVENT_GRID_DEAD_LETTER_CONTAINER).')
param deadLetterContainerName string

@description('IDs of further subscriptions to watch. A system topic must live in the subscription it watches, so each gets a resource group of its own.')
param extraWatchedSubscriptionIds array = []

@minValue(1)
@maxValue(30)
@description('Delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
@description('Minutes Event Grid keeps retrying an event. A day matches the nightly sweep, which repairs whatever an expired event would have.')
param eventTimeToLiveInMinutes int = 1440

// The single source of truth for what the remediator handles; the Event Grid trigger dispatches on the same file.
var watched = loadJsonContent('../remediation/watched-operations.json')
// Not azd-env-name: azd looks up an environment's resource group by that tag, and these are not azd's.
var tags = {
  'aks-egress-remediator-env': environmentName
}
// Per extra subscription: the resource group that holds its topic.
var extraTopicResourceGroupName = 'rg-${environmentName}-events'
var deadLetterStorageAccountId = resourceId(subscription().subscriptionId, appResourceGroupName, 'Microsoft.Storage/storageAccounts', deadLetterStorageAccountName)

module homeTopic 'events/system-topic.bicep' = {
  name: 'remediator-topic-home'
  scope: resourceGroup(appResourceGroupName)
  params: {
    name: systemTopicName
    sourceSubscriptionId: subscription().subscriptionId
    tags: tags
  }
}

module extraTopics 'events/watched-subscription.bicep' = [for (subscriptionId, i) in extraWatchedSubscriptionIds: {
  name: 'remediator-topic-${i}-${uniqueString(subscriptionId)}'
  scope: subscription(subscriptionId)
  params: {
    resourceGroupName: extraTopicResourceGroupName
    location: location
    topicName: systemTopicName
    tags: tags
  }
}]

module homeDeadLetterAccess 'events/dead-letter-access.bicep' = {
  name: 'remediator-dead-letter-home'
  scope: resourceGroup(appResourceGroupName)
  params: {
    storageAccountName: deadLetterStorageAccountName
    containerName: deadLetterContainerName
    topicPrincipalId: homeTopic.outputs.principalId
  }
}

module extraDeadLetterAccess 'events/dead-letter-access.bicep' = [for (subscriptionId, i) in extraWatchedSubscriptionIds: {
  name: 'remediator-dead-letter-${i}-${uniqueString(subscriptionId)}'
  scope: resourceGroup(appResourceGroupName)
  params: {
    storageAccountName: deadLetterStorageAccountName
    containerName: deadLetterContainerName
    topicPrincipalId: extraTopics[i].outputs.topicPrincipalId
  }
}]

module homeSubscription 'events/event-subscription.bicep' = {
  name: 'remediator-events-home'
  scope: resourceGroup(appResourceGroupName)
  params: {
    topicName: homeTopic.outputs.name
    functionAppId: functionAppId
    includedEventTypes: watched.eventTypes
    operationNames: watched.operations
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}

module extraSubscriptions 'events/event-subscription.bicep' = [for (subscriptionId, i) in extraWatchedSubscriptionIds: {
  name: 'remediator-events-${i}-${uniqueString(subscriptionId)}'
  scope: resourceGroup(subscriptionId, extraTopicResourceGroupName)
  params: {
    topicName: extraTopics[i].outputs.topicName
    functionAppId: functionAppId
    includedEventTypes: watched.eventTypes
    operationNames: watched.operations
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}]
