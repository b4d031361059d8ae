// The Event Grid system topic on the storage account: the source of the
// Event Grid-based blob trigger (`intake`). The subscription itself
// (Microsoft.Storage.BlobCreated, datasets container only, delivered to the blob
// extension's webhook) is created by infra/hooks/postdeploy.sh, because its URL
// carries the blobs_extension system key, which exists only once the code runs.

@description('Name of the system topic.')
param name string

@description('Region of the storage account (a system topic lives with its source).')
param location string

@description('Tags applied to the topic.')
param tags object = {}

@description('Name of the storage account that raises the events (in this resource group).')
param storageAccountName string

@description('Container where events that could not be delivered are dead-lettered.')
param deadLetterContainerName string

var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource deadLetterContainer 'containers' existing = {
      name: deadLetterContainerName
    }
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    // Used only to write undeliverable events to the dead-letter container
    // (shared keys are disabled on the account).
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Why: a dataset whose BlobCreated event cannot be delivered (the app is down for
// longer than the retry window) is dead-lettered here instead of being lost, so it
// can be replayed. Scoped to the one dead-letter container, not the account.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::deadLetterContainer.id, topic.id, storageBlobDataContributorRoleId)
  scope: storage::blobService::deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
