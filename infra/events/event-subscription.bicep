// Routes one system topic's ARM events to on_resource_change. Only the event types and operations the
// remediator handles pass the filter; the caller loads both from remediation/watched-operations.json.
param topicName string
param functionAppId string
param includedEventTypes array
// Event Grid accepts at most 25 values across a subscription's advanced filters: if the operation list outgrows
// that, this module's parameter validation fails the deployment before the subscription is written.
@minLength(1)
@maxLength(25)
param operationNames array
param deadLetterStorageAccountId string
param deadLetterContainerName string
param maxDeliveryAttempts int
param eventTimeToLiveInMinutes int

resource armEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource toRemediator 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: armEvents
  name: 'aks-egress-remediator'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/on_resource_change'
        // The trigger runs once per event anyway; batching would only make one failure retry many events.
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: includedEventTypes
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: operationNames
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    // Dead-lettering is off unless configured; without it an event that exhausts its retries is lost.
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = toRemediator.id
