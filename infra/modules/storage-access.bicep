// Data-plane roles on the storage account for one principal: the Function App's
// identity, or the person (or pipeline) that ran `azd up`. Shared keys are
// disabled on the account, so these roles are the only way in.

@description('Name of the storage account (in this resource group).')
param storageAccountName string

@description('Object id of the principal that receives the roles.')
param principalId string

@description('Type of the principal.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param principalType string = 'ServicePrincipal'

@description('Also grant Storage Blob Delegator (only the app needs it: it signs user-delegation SAS URLs).')
param grantBlobDelegator bool = false

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a' // Storage Blob Delegator
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Why: the Functions host keeps its locks, timer schedules and blob-trigger receipts
// as blobs it must create, lease and delete in azure-webjobs-* containers (identity-based
// AzureWebJobsStorage requires Owner, Contributor is not enough for the host); the code
// reads datasets and writes reports and results. A person uses it to drop datasets and
// read reports.
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

// Why: the Event Grid-based blob trigger keeps poison and retry messages in queues
// (webjobs-blobtrigger-poison) that the host creates, reads and deletes.
resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

// Why: the service's state lives in tables (Datasets, Jobs, Deployments,
// DeploymentEvents, IdempotencyKeys): read, insert and ETag-guarded updates.
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

// Why: large datasets are imported by Azure OpenAI from a SAS URL; with shared keys
// disabled that SAS must be a user-delegation SAS, and getting a user delegation key
// (Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action)
// is all this role grants.
resource blobDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantBlobDelegator) {
  name: guid(storage.id, principalId, roles.storageBlobDelegator)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
    principalId: principalId
    principalType: principalType
  }
}
