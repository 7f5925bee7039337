// PaletAI on Azure App Service: what Phase 1 of the migration checklist creates.
//
//   Linux App Service Plan (B1) -> Web App (Python 3.11, gunicorn + uvicorn workers)
//   Storage Account -> blob container "game-images" (public read of blobs, for cover images)
//   Log Analytics workspace -> Application Insights (workspace-based)
//   Post-migration: action group (email), metric alerts (5xx, response time, CPU, memory, disk),
//   an availability test of /health with its alert, a monthly budget, the app's managed identity
//   as Storage Blob Data Contributor on the account
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

@description('Email that alerts and budget notifications go to (empty: the action group has no receiver yet).')
param alertEmail string = ''

@description('Monthly budget of the resource group, in the billing currency (the checklist: $50).')
@minValue(1)
param monthlyBudget int = 50

@description('First day of the budget period (yyyy-MM-01); default: this month.')
param budgetStartDate string = '${utcNow('yyyy-MM')}-01'

@description('Disk quota of the plan in GB (B1: 10), for the disk-space alert at 85%.')
@minValue(1)
param diskQuotaGb int = 10

@description('CORS_ORIGINS of the app: origins browsers may call the API from (the app answers CORS itself).')
param corsOrigins array = [
  '*'
]

@description('Address ranges (CIDR) allowed to reach the app; empty: everyone.')
param allowedIpRanges array = []

@description('The app reaches blob storage with its managed identity (AZURE_STORAGE_ACCOUNT_URL) instead of the account key.')
param useManagedIdentityForStorage bool = false

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
  // checkov:skip=CKV_AZURE_225: zone redundancy needs Premium v3 with 3+ instances, not the checklist's B1
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
  // checkov:skip=CKV_AZURE_35: browsers load the cover images straight from blob storage (the checklist's public read)
  // checkov:skip=CKV_AZURE_206: LRS keeps the B1 budget; storageSku offers ZRS/GRS, and the migration keeps the old copy
  // checkov:skip=CKV_AZURE_43: the name is computed (prefix without dashes + uniqueString, lower-cased, take 24)
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
  // checkov:skip=CKV_AZURE_34: the checklist requires public blob read on game-images (covers load in any browser)
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
    // Only App Service's front end reaches the app, from addresses that are not fixed: trust its
    // X-Forwarded-For, so the login and registration throttles count real clients.
    name: 'FORWARDED_ALLOW_IPS'
    value: '*'
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

// The key in a connection string, or (useManagedIdentityForStorage) the account URL, which the
// app then reaches with its managed identity (the role assignment below).
var storageSetting = useManagedIdentityForStorage ? {
  name: 'AZURE_STORAGE_ACCOUNT_URL'
  value: storage.properties.primaryEndpoints.blob
} : {
  name: 'AZURE_STORAGE_CONNECTION_STRING'
  value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
}

// Settings built from the other resources (never filtered: they always have a value).
var siteSettings = [
  storageSetting
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsights.properties.ConnectionString
  }
  {
    name: 'CORS_ORIGINS'
    value: join(corsOrigins, ',')
  }
]

resource webApp 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222: a public API for the mobile app; allowedIpRanges restricts it when needed
  // checkov:skip=CKV_AZURE_212: one instance on B1, the checklist's SKU; scale out with skuName S1+ and instances
  // checkov:skip=CKV_AZURE_17: players' phones carry no client certificates; users authenticate with JWTs
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
      appSettings: concat(requiredSettings, filter(optionalSettings, setting => !empty(setting.value)), siteSettings)
      // App Service restarts an instance that stops answering here (and takes it out of rotation).
      healthCheckPath: '/health'
      ipSecurityRestrictions: [
        for (range, i) in allowedIpRanges: {
          name: 'allow-${i}'
          ipAddress: range
          action: 'Allow'
          priority: 100 + i
        }
      ]
      ipSecurityRestrictionsDefaultAction: empty(allowedIpRanges) ? 'Allow' : 'Deny'
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

// The app's own identity may read and write the cover images (AZURE_STORAGE_ACCOUNT_URL mode).
var storageBlobDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')

resource appBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, webApp.id, storageBlobDataContributor)
  properties: {
    roleDefinitionId: storageBlobDataContributor
    principalId: webApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Post-migration monitoring, with the checklist's thresholds.
resource alertGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-alerts-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'paletai'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var metricAlerts = [
  {
    name: 'http-5xx'
    description: 'HTTP 5xx errors > 5 in 5 minutes'
    scope: webApp.id
    namespace: 'Microsoft.Web/sites'
    metric: 'Http5xx'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 5
    window: 'PT5M'
    severity: 1
  }
  {
    name: 'response-time'
    description: 'Response time > 5 seconds'
    scope: webApp.id
    namespace: 'Microsoft.Web/sites'
    metric: 'HttpResponseTime'
    aggregation: 'Average'
    operator: 'GreaterThan'
    threshold: 5
    window: 'PT5M'
    severity: 2
  }
  {
    name: 'cpu'
    description: 'CPU > 80% for 10 minutes'
    scope: plan.id
    namespace: 'Microsoft.Web/serverfarms'
    metric: 'CpuPercentage'
    aggregation: 'Average'
    operator: 'GreaterThan'
    threshold: 80
    window: 'PT10M'
    severity: 2
  }
  {
    name: 'memory'
    description: 'Memory > 80% for 10 minutes'
    scope: plan.id
    namespace: 'Microsoft.Web/serverfarms'
    metric: 'MemoryPercentage'
    aggregation: 'Average'
    operator: 'GreaterThan'
    threshold: 80
    window: 'PT10M'
    severity: 2
  }
  {
    // App Service has no disk percentage metric: 85% of the plan's quota, in bytes.
    name: 'disk'
    description: 'Disk space > 85% of the plan quota'
    scope: webApp.id
    namespace: 'Microsoft.Web/sites'
    metric: 'FileSystemUsage'
    aggregation: 'Average'
    operator: 'GreaterThan'
    threshold: diskQuotaGb * 1024 * 1024 * 1024 * 85 / 100
    window: 'PT15M'
    severity: 2
  }
]

resource alerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [
  for alert in metricAlerts: {
    name: '${namePrefix}-${alert.name}-${suffix}'
    location: 'global'
    tags: tags
    properties: {
      description: alert.description
      severity: alert.severity
      enabled: true
      scopes: [
        alert.scope
      ]
      evaluationFrequency: 'PT1M'
      windowSize: alert.window
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion'
            name: alert.name
            metricNamespace: alert.namespace
            metricName: alert.metric
            operator: alert.operator
            threshold: alert.threshold
            timeAggregation: alert.aggregation
          }
        ]
      }
      actions: [
        {
          actionGroupId: alertGroup.id
        }
      ]
    }
  }
]

// Availability < 99%: a standard test of /health from five regions every 5 minutes.
var availabilityTestName = '${namePrefix}-health-${suffix}'

resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: availabilityTestName
  location: location
  tags: union(tags, {
    'hidden-link:${appInsights.id}': 'Resource'
  })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: availabilityTestName
    Name: 'PaletAI /health'
    Enabled: true
    Frequency: 300
    Timeout: 30
    Kind: 'standard'
    RetryEnabled: true
    Locations: [
      {
        Id: 'us-va-ash-azr'
      }
      {
        Id: 'us-ca-sjc-azr'
      }
      {
        Id: 'emea-nl-ams-azr'
      }
      {
        Id: 'emea-gb-db3-azr'
      }
      {
        Id: 'apac-sg-sin-azr'
      }
    ]
    Request: {
      RequestUrl: 'https://${webApp.properties.defaultHostName}/health'
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

resource availabilityAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-availability-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Availability < 99%'
    severity: 1
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'availability'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'availabilityResults/availabilityPercentage'
          dimensions: [
            {
              name: 'availabilityResult/name'
              operator: 'Include'
              values: [
                healthTest.properties.Name
              ]
            }
          ]
          operator: 'LessThan'
          threshold: 99
          timeAggregation: 'Average'
        }
      ]
    }
    actions: [
      {
        actionGroupId: alertGroup.id
      }
    ]
  }
}

// Cost management: a monthly budget with notifications at 80% and 100% of it.
resource budget 'Microsoft.Consumption/budgets@2023-05-01' = {
  name: '${namePrefix}-budget-${suffix}'
  properties: {
    category: 'Cost'
    amount: monthlyBudget
    timeGrain: 'Monthly'
    timePeriod: {
      startDate: budgetStartDate
    }
    notifications: {
      actual80: {
        enabled: true
        operator: 'GreaterThanOrEqualTo'
        threshold: 80
        thresholdType: 'Actual'
        contactEmails: empty(alertEmail) ? [] : [alertEmail]
        contactGroups: [
          alertGroup.id
        ]
      }
      actual100: {
        enabled: true
        operator: 'GreaterThanOrEqualTo'
        threshold: 100
        thresholdType: 'Actual'
        contactEmails: empty(alertEmail) ? [] : [alertEmail]
        contactGroups: [
          alertGroup.id
        ]
      }
    }
  }
}

output webAppName string = webApp.name
output webAppUrl string = 'https://${webApp.properties.defaultHostName}'
output webAppPrincipalId string = webApp.identity.principalId
output storageAccountName string = storage.name
output storageContainerName string = container.name
output appInsightsName string = appInsights.name
output actionGroupName string = alertGroup.name
output budgetName string = budget.name
