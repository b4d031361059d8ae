// The Event Grid custom topic that receives every notification of the service as a
// CloudEvent (CloudEvents 1.0 input schema, the event's own id, type and subject), when
// the `notifications` parameter of main.bicep is on. The app publishes to it with its
// managed identity; keys and SAS tokens are disabled. Anyone who should hear about
// jobs, datasets and deployments subscribes to it (a Logic App, a Function, a queue,
// a webhook), filtering on the event type (com.ft-autopilot.job.failed ...).

@description('Name of the topic.')
param name string

@description('Region of the topic.')
param location string

@description('Tags applied to the topic.')
param tags object = {}

@description('Principal id of the identity that publishes (the Function App\'s).')
param publisherPrincipalId string

var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: Public network access stays on: the Function App (Flex Consumption without a VNet, which this template does not create) publishes over the topic's public endpoint; only Entra ID tokens of a principal holding EventGrid Data Sender are accepted, keys being disabled.
  name: name
  location: location
  tags: tags
  identity: {
    // For event subscriptions that deliver or dead-letter with the topic's identity
    // (to a Service Bus queue, a storage queue or blob container, without keys).
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    // Entra ID only: the publisher authenticates with its managed identity.
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// Why: the notifier publishes each notification to this topic with the app's managed
// identity (keys are disabled on the topic); this role allows sending events and
// nothing else. Scoped to this one topic.
resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, publisherPrincipalId, eventGridDataSenderRoleId)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output name string = topic.name
output endpoint string = topic.properties.endpoint
