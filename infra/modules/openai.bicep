// A new Azure OpenAI account, created only when the deployment is not pointed at
// an existing one. Local (key) authentication is disabled: the service, and
// people, reach it with Entra ID tokens only.

@description('Name of the account; also its custom subdomain (required for Entra ID tokens).')
param name string

@description('Region of the account: one where fine-tuning is offered for the base models you will train.')
param location string

@description('Kind of the account: OpenAI (Azure OpenAI) or AIServices (Azure AI Foundry resource, a superset).')
@allowed([
  'OpenAI'
  'AIServices'
])
param kind string = 'OpenAI'

@description('Tags applied to the account.')
param tags object = {}

@description('Resource id of the Log Analytics workspace that receives the account\'s audit logs.')
param logAnalyticsWorkspaceId string

resource account 'Microsoft.CognitiveServices/accounts@2025-06-01' = {
  // checkov:skip=CKV_AZURE_134: Public network access stays Enabled: the Flex Consumption app is not VNet-integrated in this template and calls the data plane over the public endpoint. Local (key) authentication is disabled, so every call needs an Entra ID token and an RBAC role on this account.
  name: name
  location: location
  tags: tags
  kind: kind
  sku: {
    name: 'S0'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

// Audit trail of control-plane and key operations on the account.
resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: account
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = account.id
output name string = account.name
