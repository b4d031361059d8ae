// Roles on the Azure OpenAI account (new or existing) for the Function App's
// identity, and read-back of the account's endpoint. Deployed at the account's
// resource group, which may be in another resource group or subscription.

@description('Name of the Azure OpenAI account (in this resource group).')
param accountName string

@description('Object id of the Function App\'s managed identity.')
param appPrincipalId string

@description('Object id of the person or pipeline that ran azd (empty: no role for them).')
param userPrincipalId string = ''

@description('Type of that principal.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param userPrincipalType string = 'User'

// Built-in role definition ids.
var roles = {
  cognitiveServicesOpenAIContributor: 'a001fd3d-188f-4b5d-821b-7da978bf7442' // Cognitive Services OpenAI Contributor
  cognitiveServicesOpenAIUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd' // Cognitive Services OpenAI User
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05' // Monitoring Reader
}

resource account 'Microsoft.CognitiveServices/accounts@2025-06-01' existing = {
  name: accountName
}

// Why: the app uploads and imports training files, creates and cancels fine-tuning
// jobs, reads their results, and creates, lists and deletes deployments of the
// fine-tuned models through ARM. This is the narrowest built-in role that covers
// all of that; even subscription owners need it assigned explicitly.
resource appOpenAIContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, roles.cognitiveServicesOpenAIContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAIContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Why: idle detection reads the AzureOpenAIRequests metric per deployment
// (Microsoft.Insights/metrics/read) to keep fine-tuned deployments from the
// 15-day inactivity deletion; read-only, scoped to this one account.
resource appMonitoringReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, roles.monitoringReader)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Why: key authentication is disabled, so the person who deployed the service needs
// a data-plane role to call the fine-tuned deployments it creates (chat and
// completions only; no training or deployment rights).
resource userOpenAIUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(account.id, userPrincipalId, roles.cognitiveServicesOpenAIUser)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.cognitiveServicesOpenAIUser)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// The data-plane endpoint. AIServices accounts list it under endpoints; OpenAI
// accounts expose it as the main endpoint.
output endpoint string = account.kind == 'AIServices' ? account.properties.endpoints['OpenAI Language Model Instance API'] : account.properties.endpoint
output id string = account.id
output name string = account.name
