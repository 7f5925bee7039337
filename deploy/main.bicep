// PaletAI on Azure App Service: what Phase 1 of the migration checklist creates.
//
//   Linux App Service Plan (B1) -> Web App (Python 3.11, gunicorn + uvicorn workers)
//   Storage Account -> blob container "game-images" (public read of blobs, for cover images)
//   Log Analytics workspace -> Application Insights (workspace-based)
//
// Deploy with `paletai deploy infra` or deploy/Deploy-PaletAI.ps1 (both run
// `az deployment group create --template-file deploy/main.bicep`). Secrets are @secure
// parameters: they never show in the deployment's history or outputs.

targetScope = 'resourceGroup'

@description('Azure region of every resource (default: the resource group\'s).')
param location string = resourceGroup().location

@description('Prefix of the resource names (lower-case letters, digits and dashes).')
@minLength(3)
@maxLength(20)
param namePrefix string = 'paletai'

@description('Web app name: the host name becomes NAME.azurewebsites.net, so it is globally unique.')
@minLength(2)
@maxLength(60)
param webAppName string = '${namePrefix}-${uniqueString(resourceGroup().id)}'

@description('App Service Plan SKU. F1 (Free) and D1 (Shared) cannot keep the app always on.')
@allowed([
  'F1'
  'D1'
  'B1'
  'B2'
  'B3'
  'S1'
  'S2'
  'S3'
  'P0v3'
  'P1v3'
  'P2v3'
  'P3v3'
])
param skuName string = 'B1'

@description('Python version of the built-in Linux image.')
param pythonVersion string = '3.11'

@description('Startup command of the web app (the script ships in the ZIP package).')
param startupCommand string = 'bash deploy/startup.sh'

@description('Storage account redundancy.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param storageSku string = 'Standard_LRS'

@description('Blob container of the cover images (AZURE_STORAGE_CONTAINER).')
param containerName string = 'game-images'

@description('Days Log Analytics keeps telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('AI_PROVIDER of the app.')
@allowed([
  'openai'
  'azure-openai'
  'anthropic'
  'offline'
])
param aiProvider string = 'openai'

@description('MongoDB URI (DB_PATH).')
@secure()
param dbPath string

@description('Token signing key (JWT_SECRET_KEY), 32+ characters.')
@secure()
@minLength(32)
param jwtSecretKey string

@description('OPENAI_API_KEY (empty: not set).')
@secure()
param openAiApiKey string = ''

@description('OPENAI_MODEL (empty: the app\'s default).')
param openAiModel string = ''

@description('AZURE_OPENAI_ENDPOINT (empty: not set).')
param azureOpenAiEndpoint string = ''

@description('AZURE_OPENAI_API_KEY (empty: not set).')
@secure()
param azureOpenAiApiKey string = ''

@description('AZURE_OPENAI_MODEL: the deployment name (empty: the app\'s default).')
param azureOpenAiModel string = ''

@description('ANTHROPIC_API_KEY (empty: not set).')
@secure()
param anthropicApiKey string = ''

@description('ANTHROPIC_MODEL (empty: the app\'s default).')
param anthropicModel string = ''

@description('ONESIGNAL_APP_ID (empty: pushes are logged and skipped).')
param oneSignalAppId string = ''

@description('ONESIGNAL_REST_API_KEY (empty: not set).')
@secure()
param oneSignalRestApiKey string = ''

@description('Tags on every resource.')
param tags object = {
  app: 'paletai'
}

var suffix = uniqueString(resourceGroup().id)
// Storage account names: 3-24 lower-case letters and digits, globally unique.
var storageAccountName = take('${toLower(replace(namePrefix, '-', ''))}${suffix}', 24)
// Free and Shared plans refuse alwaysOn.
var alwaysOn = !contains([
  'F1'
  'D1'
], skuName)

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${namePrefix}-plan-${suffix}'
  location: location
  tags: tags
  kind: 'linux'
  sku: {
    name: skuName
  }
  properties: {
    reserved: true // a Linux plan
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    // Cover images are read by browsers straight from blob storage.
    allowBlobPublicAccess: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'Blob'
  }
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-insights-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
  }
}

// The app settings, under the app's own (legacy) names. Optional values that are empty are left
// out, so an unset key is unset in the app rather than an empty string; that filter only ever
// sees parameter values (the settings built from other resources are listed in the site).
var requiredSettings = [
  {
    name: 'DB_PATH'
    value: dbPath
  }
  {
    name: 'JWT_SECRET_KEY'
    value: jwtSecretKey
  }
  {
    name: 'ENVIRONMENT'
    value: 'production'
  }
  {
    name: 'AI_PROVIDER'
    value: aiProvider
  }
  {
    name: 'AZURE_STORAGE_CONTAINER'
    value: containerName
  }
  {
    // Oryx installs requirements.txt from the ZIP package during the deployment.
    name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'
    value: 'true'
  }
]

var optionalSettings = [
  {
    name: 'OPENAI_API_KEY'
    value: openAiApiKey
  }
  {
    name: 'OPENAI_MODEL'
    value: openAiModel
  }
  {
    name: 'AZURE_OPENAI_ENDPOINT'
    value: azureOpenAiEndpoint
  }
  {
    name: 'AZURE_OPENAI_API_KEY'
    value: azureOpenAiApiKey
  }
  {
    name: 'AZURE_OPENAI_MODEL'
    value: azureOpenAiModel
  }
  {
    name: 'ANTHROPIC_API_KEY'
    value: anthropicApiKey
  }
  {
    name: 'ANTHROPIC_MODEL'
    value: anthropicModel
  }
  {
    name: 'ONESIGNAL_APP_ID'
    value: oneSignalAppId
  }
  {
    name: 'ONESIGNAL_REST_API_KEY'
    value: oneSignalRestApiKey
  }
]

resource webApp 'Microsoft.Web/sites@2023-12-01' = {
  name: webAppName
  location: location
  tags: tags
  kind: 'app,linux'
  identity: {
    type: 'SystemAssigned'
  }
  // The container exists before the app starts writing cover images to it.
  dependsOn: [
    container
  ]
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'PYTHON|${pythonVersion}'
      appCommandLine: startupCommand
      alwaysOn: alwaysOn
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat(
        requiredSettings,
        filter(optionalSettings, setting => !empty(setting.value)),
        [
          {
            name: 'AZURE_STORAGE_CONNECTION_STRING'
            value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
          }
          {
            name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
            value: appInsights.properties.ConnectionString
          }
        ]
      )
    }
  }
}

// The checklist's GitHub Actions method deploys with the publish profile, which authenticates
// to the SCM site with basic credentials: keep those on for SCM, off for FTP.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: webApp
  name: 'scm'
  properties: {
    allow: true
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: webApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

output webAppName string = webApp.name
output webAppUrl string = 'https://${webApp.properties.defaultHostName}'
output webAppPrincipalId string = webApp.identity.principalId
output storageAccountName string = storage.name
output storageContainerName string = container.name
output appInsightsName string = appInsights.name
