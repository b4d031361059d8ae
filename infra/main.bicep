// Fine-tuning autopilot for Azure OpenAI: everything it needs in Azure.
// Deployed by `azd up` (azure.yaml at the repository root); parameters come from
// the azd environment through main.parameters.json.
targetScope = 'subscription'

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds a unique suffix for every resource.')
param environmentName string

@minLength(1)
@description('Region of the Function App, storage, monitoring and Event Grid (one that offers Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group to create (default: rg-<environmentName>).')
param resourceGroupName string = ''

@description('Object id of the person or pipeline running azd (azd passes AZURE_PRINCIPAL_ID); they get the same storage data roles as the app, and may call the account\'s deployments. Empty: no roles for them.')
param principalId string = ''

@description('Type of that principal.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Name of an existing Azure OpenAI (or AIServices) account to use. Empty: a new account is created.')
param openAiAccountName string = ''

@description('Resource group of that existing account (default: the resource group created here).')
param openAiResourceGroupName string = ''

@description('Subscription of that existing account (default: the subscription deployed to).')
param openAiSubscriptionId string = ''

@description('Region of a new account: one where fine-tuning is offered for your base models (for example swedencentral or northcentralus). Ignored for an existing account.')
param openAiLocation string = 'swedencentral'

@description('Kind of a new account. Ignored for an existing account.')
@allowed([
  'OpenAI'
  'AIServices'
])
param openAiKind string = 'OpenAI'

@description('More existing Azure OpenAI accounts for the pool (AZURE_OPENAI_ACCOUNTS, passed to the app as is): a JSON list of {name, endpoint, region, subscription?, resource_group?, training_types?}; subscription and resource group default to the main account\'s. The app\'s identity gets the same roles on each. Empty: the one account above.')
param openAiAccounts string = ''

@description('Data-plane API version for files and fine-tuning jobs (AZURE_OPENAI_API_VERSION).')
param openAiApiVersion string = '2025-04-01-preview'

@description('NCRONTAB schedule of the monitor timer (MONITOR_SCHEDULE): second minute hour day month weekday.')
param monitorSchedule string = '0 */2 * * * *'

@description('NCRONTAB schedule of the keeper timer (KEEPER_SCHEDULE): second minute hour day month weekday.')
param keeperSchedule string = '0 0 * * * *'

@description('Base model of a dataset that names none (DEFAULT_BASE_MODEL).')
param defaultBaseModel string = 'gpt-4o-mini-2024-07-18'

@description('SKU of deployments when a job names none (DEFAULT_DEPLOYMENT_SKU).')
@allowed([
  'Standard'
  'GlobalStandard'
  'DeveloperTier'
  'ProvisionedManaged'
])
param defaultDeploymentSku string = 'Standard'

@description('Keep-alive policy of deployments when a job names none (DEFAULT_KEEP_ALIVE).')
@allowed([
  'redeploy'
  'ping'
  'none'
])
param defaultKeepAlive string = 'redeploy'

@description('Also create an Event Grid custom topic that receives every notification as a CloudEvent; the app publishes to it with its identity (NOTIFY_EVENTGRID_ENDPOINT). "true" or "false" (azd passes environment values as text: azd env set NOTIFY_EVENTGRID_TOPIC true).')
@allowed([
  'true'
  'false'
])
param notifications string = 'false'
var notificationsOn = notifications == 'true'

@secure()
@description('Webhooks that receive notifications (NOTIFY_WEBHOOKS): a JSON list of {url, format, name, events} or space-separated format=url entries; format generic, cloudevents, teams or slack. Their URLs carry secrets. Empty: none.')
param notifyWebhooks string = ''

@description('NCRONTAB schedule of the notifier timer (NOTIFY_SCHEDULE): second minute hour day month weekday.')
param notifySchedule string = '0 * * * * *'

@description('Application (client) id of the Entra ID app registration with the app roles Reader and Operator (README "Who may do what"). Set: App Service authentication signs people in with Entra ID and the app checks their roles. Empty: no sign-in; every caller has the function key\'s role (API_KEY_ROLE).')
param authClientId string = ''

@description('Directory (tenant) id of that app registration (default: the tenant deployed to).')
param authTenantId string = ''

@description('Role of a request with the function key and no signed-in identity, i.e. automation (API_KEY_ROLE): operator, reader, or none (signed-in callers only). Empty: operator without sign-in (no authClientId: as before), reader with it (the dashboard\'s URL carries the key, so the key alone must not act once roles exist).')
@allowed([
  ''
  'operator'
  'reader'
  'none'
])
param apiKeyRole string = ''

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var serviceName = 'autopilot'
var functionAppName = 'func-${resourceToken}'

// Containers and tables the code uses (defaults of shared/settings.py).
var containerNames = {
  datasets: 'datasets'
  reports: 'reports'
  results: 'results'
}
var tableNames = {
  datasets: 'Datasets'
  jobs: 'Jobs'
  deployments: 'Deployments'
  deploymentEvents: 'DeploymentEvents'
  idempotency: 'IdempotencyKeys'
}
// The Flex Consumption deployment package and Event Grid's dead letters.
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'

var createOpenAi = empty(openAiAccountName)
var openAiName = createOpenAi ? 'aoai-${resourceToken}' : openAiAccountName
var openAiResourceGroup = empty(openAiResourceGroupName) ? rg.name : openAiResourceGroupName
var openAiSubscription = empty(openAiSubscriptionId) ? subscription().subscriptionId : openAiSubscriptionId
// The function key's role: as asked, else operator without sign-in and reader with it.
var keyRole = empty(apiKeyRole) ? (empty(authClientId) ? 'operator' : 'reader') : apiKeyRole
var extraOpenAiAccounts = empty(openAiAccounts) ? [] : json(openAiAccounts)

// ---------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${functionAppName}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      containerNames.datasets
      containerNames.reports
      containerNames.results
      deploymentContainerName
      deadLetterContainerName
    ]
    tableNames: [
      tableNames.datasets
      tableNames.jobs
      tableNames.deployments
      tableNames.deploymentEvents
      tableNames.idempotency
    ]
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

// The app's data roles on the storage account, plus Storage Blob Delegator
// (user-delegation SAS for imports of large datasets).
module appStorageAccess 'modules/storage-access.bicep' = {
  name: 'app-storage-access'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    grantBlobDelegator: true
  }
}

// The same data roles for whoever ran azd, so they can drop datasets and read
// reports and tables without keys.
module userStorageAccess 'modules/storage-access.bicep' = if (!empty(principalId)) {
  name: 'user-storage-access'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    principalId: principalId
    principalType: principalType
    grantBlobDelegator: false
  }
}

module openAi 'modules/openai.bicep' = if (createOpenAi) {
  name: 'openai'
  scope: resourceGroup(openAiSubscription, openAiResourceGroup)
  dependsOn: [
    rg
  ]
  params: {
    name: openAiName
    location: openAiLocation
    kind: openAiKind
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

// Roles on the account (new or existing) and its endpoint.
module openAiAccess 'modules/openai-access.bicep' = {
  name: 'openai-access'
  scope: resourceGroup(openAiSubscription, openAiResourceGroup)
  dependsOn: [
    rg
    openAi
  ]
  params: {
    accountName: openAiName
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

// The same roles on every other account of the pool (AZURE_OPENAI_ACCOUNTS): existing
// accounts, each in its own resource group and subscription.
module openAiAccessPool 'modules/openai-access.bicep' = [for account in extraOpenAiAccounts: {
  name: 'openai-access-${account.name}'
  scope: resourceGroup(contains(account, 'subscription') ? account.subscription : openAiSubscription, contains(account, 'resource_group') ? account.resource_group : openAiResourceGroup)
  dependsOn: [
    rg
  ]
  params: {
    accountName: account.name
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}]

// The notifications topic (optional): every notification as a CloudEvent, published
// by the app with its identity (EventGrid Data Sender on the topic).
module notificationsTopic 'modules/notifications.bicep' = if (notificationsOn) {
  name: 'notifications-topic'
  scope: rg
  params: {
    name: 'evgt-notify-${resourceToken}'
    location: location
    tags: tags
    publisherPrincipalId: identity.outputs.principalId
  }
}

// Every setting of shared/settings.py except the local-only ones
// (AZURE_OPENAI_API_KEY, LOCAL_ARM_TOKEN, LOCAL_CA_BUNDLE), which must never be set in Azure.
var serviceSettings = {
  AZURE_OPENAI_ENDPOINT: openAiAccess.outputs.endpoint
  AZURE_OPENAI_API_VERSION: openAiApiVersion
  AZURE_SUBSCRIPTION_ID: openAiSubscription
  AZURE_RESOURCE_GROUP: openAiResourceGroup
  AZURE_OPENAI_ACCOUNT: openAiName
  AZURE_OPENAI_ACCOUNTS: openAiAccounts
  ARM_ENDPOINT: environment().resourceManager
  AZURE_CLIENT_ID: identity.outputs.clientId
  DATASETS_CONTAINER: containerNames.datasets
  REPORTS_CONTAINER: containerNames.reports
  RESULTS_CONTAINER: containerNames.results
  DATASETS_TABLE: tableNames.datasets
  JOBS_TABLE: tableNames.jobs
  DEPLOYMENTS_TABLE: tableNames.deployments
  DEPLOYMENT_EVENTS_TABLE: tableNames.deploymentEvents
  IDEMPOTENCY_TABLE: tableNames.idempotency
  DEFAULT_BASE_MODEL: defaultBaseModel
  UPLOAD_IMPORT_THRESHOLD_BYTES: '209715200'
  FILE_PROCESSING_TIMEOUT_SECONDS: '600'
  AZURE_HTTP_TIMEOUT_SECONDS: '60'
  MONITOR_SCHEDULE: monitorSchedule
  KEEPER_SCHEDULE: keeperSchedule
  KEEPER_MARGIN_HOURS: '48'
  KEEPER_RECENT_ACTIVITY_MINUTES: '60'
  KEEPER_ADOPT_EXISTING: 'false'
  HOSTING_COST_PER_HOUR: '1.70'
  DEFAULT_DEPLOYMENT_SKU: defaultDeploymentSku
  DEFAULT_DEPLOYMENT_CAPACITY: '1'
  DEFAULT_KEEP_ALIVE: defaultKeepAlive
  NOTIFY_WEBHOOKS: notifyWebhooks
  NOTIFY_EVENTGRID_ENDPOINT: notificationsOn ? notificationsTopic!.outputs.endpoint : ''
  NOTIFY_SCHEDULE: notifySchedule
  NOTIFY_GIVE_UP_DAYS: '7'
  API_KEY_ROLE: keyRole
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'function-app'
  scope: rg
  dependsOn: [
    // Start the host only once it can reach its storage and send telemetry.
    appStorageAccess
  ]
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    serviceSettings: serviceSettings
  }
}

// Sign-in with Entra ID in front of the app (App Service authentication), when an app
// registration is named; the app checks the Reader / Operator roles it passes on.
module appAuth 'modules/auth.bicep' = if (!empty(authClientId)) {
  name: 'app-auth'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    clientId: authClientId
    tenantId: empty(authTenantId) ? tenant().tenantId : authTenantId
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  dependsOn: [
    // The dead-letter container must exist before its role assignment.
    storage
  ]
  params: {
    name: 'evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
  }
}

// ---------------------------------------------------------------------------
// Outputs: written to the azd environment; read by infra/hooks/postdeploy.sh
// ---------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOST string = functionApp.outputs.defaultHostName
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output DATASETS_CONTAINER string = containerNames.datasets
output REPORTS_CONTAINER string = containerNames.reports
output RESULTS_CONTAINER string = containerNames.results
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output EVENTGRID_SYSTEM_TOPIC_ID string = eventGrid.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
output AZURE_OPENAI_ENDPOINT string = openAiAccess.outputs.endpoint
output AZURE_OPENAI_ACCOUNT string = openAiName
output AZURE_OPENAI_RESOURCE_GROUP string = openAiResourceGroup
output AZURE_OPENAI_SUBSCRIPTION_ID string = openAiSubscription
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output NOTIFY_EVENTGRID_TOPIC_NAME string = notificationsOn ? notificationsTopic!.outputs.name : ''
output NOTIFY_EVENTGRID_TOPIC_ID string = notificationsOn ? notificationsTopic!.outputs.id : ''
