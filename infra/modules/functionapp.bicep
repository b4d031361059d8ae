// The Function App on the Flex Consumption plan (FC1), Python 3.11, running as a
// user-assigned managed identity. Every setting the code reads (shared/settings.py,
// SETTINGS_SPEC) is set here; tests/infra checks that none is missing and that the
// local-only ones (API key, static ARM token, CA bundle) are absent.

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app.')
param tags object = {}

@description('azd service name (tag azd-service-name): azure.yaml deploys that service to this app.')
param serviceName string

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, AzureWebJobsStorage__clientId).')
param identityClientId string

@description('Name of the storage account used by the host (AzureWebJobsStorage) and the code.')
param storageAccountName string

@description('Blob endpoint of that account, e.g. https://<name>.blob.core.windows.net/.')
param storageBlobEndpoint string

@description('Queue endpoint of that account.')
param storageQueueEndpoint string

@description('Table endpoint of that account.')
param storageTableEndpoint string

@description('Container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Resource id of the Log Analytics workspace that receives the function logs.')
param logAnalyticsWorkspaceId string

@description('Maximum number of instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@secure()
@description('Settings of the code (shared/settings.py), names to values (secure: NOTIFY_WEBHOOKS carries webhook secrets, kept out of the deployment history).')
param serviceSettings object

// Settings of the host, on top of the code's. Flex Consumption rejects
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION (the runtime is in
// functionAppConfig), so neither is here.
var hostSettings = {
  // The one storage connection of the host, the triggers and the code, identity-based.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Telemetry with Entra ID (local auth is disabled on Application Insights).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // One glibc malloc arena for the worker's threads: each thread would otherwise keep an arena
  // of its own, and intake's read-ahead thread alone held ~20 MB on a 512 MB blob (161 MB peak
  // against 141 MB, bench/ intake). Read by glibc when the process starts, not by the code.
  MALLOC_ARENA_MAX: '1'
}
var appSettings = union(serviceSettings, hostSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions and needs a zone-redundant (ZRS) host storage account; this template deploys to any Flex Consumption region with geo-redundant storage. Every step of the service is idempotent and the timers catch up on their next run after an outage.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Public network access stays on: Event Grid delivers BlobCreated events to the blob extension's webhook, and the jobs API is called from outside; both are authenticated by function keys. Private endpoints would need a VNet this template does not create.
  // checkov:skip=CKV_AZURE_17: Incoming client certificates cannot be required: Event Grid's webhook delivery presents none, so the blob trigger would stop receiving events.
  // checkov:skip=CKV_AZURE_212: numberOfWorkers applies to App Service plans with a fixed pool of instances; a Flex Consumption app scales per function from zero (functionAppConfig.scaleAndConcurrency), so the setting does not apply.
  // checkov:skip=CKV_AZURE_213: App Service health check takes unhealthy instances of a fixed pool out of a load balancer's rotation; a Flex Consumption app has no fixed pool and its triggers (timers, Event Grid, HTTP) do not go through such a rotation.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Publishing with user names and passwords is off: azd deploys to Flex Consumption
// with Entra ID (the deployment container), so neither FTP nor SCM basic auth is needed.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

resource functionLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'function-logs'
  scope: app
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
