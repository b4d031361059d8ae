// App Service authentication ("Easy Auth") with Microsoft Entra ID on the Function App:
// the platform signs people in (browser: /.auth/login/aad; scripts: an Entra ID bearer
// token for api://<client id>) and passes the signed-in principal, with its app roles
// (Reader, Operator), to the app as X-MS-CLIENT-PRINCIPAL. The app checks the role on
// every route (shared/api/auth.py).
//
// unauthenticatedClientAction is AllowAnonymous on purpose: automation calls with the
// function key alone (no Entra ID token), so a request nobody signed in to must still
// reach the app. The function host checks the key on every route first, and the app
// gives such a request the role API_KEY_ROLE names (operator, reader, or none: 401).
// RedirectToLoginPage or Return401 would refuse every key-only call at the platform, and
// Event Grid's BlobCreated deliveries to the blob trigger's webhook too (they carry the
// blobs_extension key, never an Entra ID token).
//
// Bicep cannot create the app registration (that needs the Microsoft Graph extension);
// create it once, with the app roles Reader and Operator (README "Who may do what"),
// and pass its client id (AUTH_CLIENT_ID). No client secret: the browser sign-in uses
// ID tokens (enable them on the registration), scripts send bearer tokens.

@description('Name of the Function App (deployed by functionapp.bicep).')
param functionAppName string

@description('Application (client) id of the Entra ID app registration people and scripts sign in to; its app roles Reader and Operator decide who may do what.')
@minLength(36)
@maxLength(36)
param clientId string

@description('Directory (tenant) id of that app registration.')
@minLength(36)
@maxLength(36)
param tenantId string

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov reads every sites/config as if it were the site's 'web' config (or the V1 authsettings); this one is authsettingsV2 and holds none of those properties:
  // checkov:skip=CKV_AZURE_13: This is App Service authentication itself, in the V2 schema: enabled under properties.platform.enabled, which tests/infra/test_auth.py checks; the check reads only the V1 authsettings' properties.enabled.
  // checkov:skip=CKV_AZURE_63: HTTP logging is a property of the site's web config, not of the authentication config; the app's requests and logs go to Application Insights and Log Analytics (functionapp.bicep).
  // checkov:skip=CKV_AZURE_65: Detailed error messages are a property of the site's web config, not of the authentication config; errors reach callers as problem+json and the logs as traces.
  // checkov:skip=CKV_AZURE_66: Failed request tracing is a property of the site's web config, not of the authentication config; failed invocations are in Application Insights and the FunctionAppLogs diagnostic setting.
  // checkov:skip=CKV_AZURE_222: Public network access is a property of the site, whose template explains why it stays on (Event Grid webhook, API callers); the authentication config has no such setting.
  // checkov:skip=CKV_AZURE_80: The .NET Framework version does not apply: the app runs Python 3.11 on Flex Consumption, and this resource is its authentication config.
  // checkov:skip=CKV_AZURE_88: Azure Files mounts belong to the azurestorageaccounts config; a Flex Consumption app runs its package from a blob container and mounts no share.
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      // Signing in is optional at the platform; the app decides (403/401 problem+json).
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        isAutoProvisioned: false
        registration: {
          clientId: clientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          // Tokens for this API (scripts: az account get-access-token --resource api://<client id>).
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
        }
        login: {
          disableWWWAuthenticate: false
        }
      }
    }
    login: {
      // The app needs the principal, not the provider's tokens: no token store to keep.
      tokenStore: {
        enabled: false
      }
    }
  }
}
