#Requires -Version 7.3
<#
.SYNOPSIS
    Phase 1 of the migration checklist: sign in, create the resource group, deploy main.bicep.

.DESCRIPTION
    A thin wrapper over the az CLI; `paletai deploy infra` does the same from any shell.
    Secrets go to az through a temporary parameters file, never on its command line, and the
    file is removed afterwards. The deployment's outputs (webAppName, webAppUrl,
    storageAccountName, appInsightsName, ...) are written to -OutputsFile.

.EXAMPLE
    .\Deploy-PaletAI.ps1 `
      -TenantId "..." `
      -SubscriptionId "..." `
      -ResourceGroupName "rg-paletai-prod" `
      -Location "westus3" `
      -MongoDbConnectionString "..." `
      -OpenAiApiKey "..." `
      -AiProvider "openai"
    (JWT_SECRET_KEY comes from the environment unless -JwtSecretKey is given: 32+ characters.)
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $TenantId,
    [Parameter(Mandatory)] [string] $SubscriptionId,
    [Parameter(Mandatory)] [string] $ResourceGroupName,
    [Parameter(Mandatory)] [string] $Location,
    [Parameter(Mandatory)] [string] $MongoDbConnectionString,
    [string] $OpenAiApiKey = '',
    [ValidateSet('openai', 'azure-openai', 'anthropic', 'offline')] [string] $AiProvider = 'openai',
    [string] $JwtSecretKey = $env:JWT_SECRET_KEY,
    [string] $AnthropicApiKey = '',
    [string] $AzureOpenAiEndpoint = '',
    [string] $AzureOpenAiApiKey = '',
    [string] $OneSignalAppId = '',
    [string] $OneSignalRestApiKey = '',
    [string] $ParametersFile = (Join-Path $PSScriptRoot 'parameters.json'),
    [string] $OutputsFile = 'deployment-outputs.json'
)
$ErrorActionPreference = 'Stop'
$PSNativeCommandUseErrorActionPreference = $true  # a failing az stops the script

az login --tenant $TenantId --output none
az account set --subscription $SubscriptionId
az group create --name $ResourceGroupName --location $Location --output none

$secretsFile = New-TemporaryFile
try {
    @{
        '$schema'      = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#'
        contentVersion = '1.0.0.0'
        parameters     = @{
            aiProvider          = @{ value = $AiProvider }
            dbPath              = @{ value = $MongoDbConnectionString }
            jwtSecretKey        = @{ value = $JwtSecretKey }
            openAiApiKey        = @{ value = $OpenAiApiKey }
            anthropicApiKey     = @{ value = $AnthropicApiKey }
            azureOpenAiEndpoint = @{ value = $AzureOpenAiEndpoint }
            azureOpenAiApiKey   = @{ value = $AzureOpenAiApiKey }
            oneSignalAppId      = @{ value = $OneSignalAppId }
            oneSignalRestApiKey = @{ value = $OneSignalRestApiKey }
        }
    } | ConvertTo-Json -Depth 5 | Set-Content -Path $secretsFile -Encoding utf8

    $deployment = az deployment group create `
        --resource-group $ResourceGroupName `
        --name "paletai-$(Get-Date -AsUTC -Format yyyyMMdd-HHmmss)" `
        --template-file (Join-Path $PSScriptRoot 'main.bicep') `
        --parameters "@$ParametersFile" `
        --parameters "@$secretsFile" `
        --output json | ConvertFrom-Json
}
finally {
    Remove-Item -Force -Path $secretsFile
}

$outputs = [ordered]@{}
$deployment.properties.outputs.PSObject.Properties | ForEach-Object { $outputs[$_.Name] = $_.Value.value }
$outputs | ConvertTo-Json | Set-Content -Path $OutputsFile -Encoding utf8
$outputs | Format-Table -AutoSize
Write-Host "Outputs written to $OutputsFile"
