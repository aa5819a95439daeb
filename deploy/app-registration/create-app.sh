#!/usr/bin/env bash
# Creates sweeper's app registration with exactly the Graph application permissions it
# needs, grants admin consent, and gives it a certificate. Needs the Azure CLI, signed in
# (az login) as someone who may consent: a Privileged Role Administrator or Global Admin.
#
#   ./create-app.sh [display-name] [console-url]
#   CONSOLE_URL=https://sweeper.example.org ./create-app.sh sweeper
#
# For the DPO's web console (sweeper console) it also:
# - registers the redirect URI console-url + /auth/callback (the console's console.url),
#   if a console URL is given as the second argument or in CONSOLE_URL;
# - declares the app roles Sweeper.DPO and Sweeper.Viewer, which decide who may do what;
# - requires assignment, so that Entra ID itself refuses anyone not given one of them;
# - requests the OpenID Connect scopes openid and profile, consented for the whole tenant
#   with the rest, so that nobody is asked to consent when signing in.
# Give people a role with ./assign-role.sh.
#
# Then scope Mail.Send to the digest's sender mailbox with scope-mail-send.ps1 and remove
# the tenant-wide Mail.Send consent, as that script explains.
set -euo pipefail

NAME="${1:-sweeper}"
CONSOLE_URL="${2:-${CONSOLE_URL:-}}"
CONSOLE_URL="${CONSOLE_URL%/}"
GRAPH=00000003-0000-0000-c000-000000000000   # Microsoft Graph's well-known app id
PERMISSIONS=(Mail.ReadBasic.All User.Read.All Domain.Read.All Mail.Send)
SIGN_IN_SCOPES=(openid profile)   # delegated: what the console asks for when signing people in

role_id() {  # the application role's id, looked up rather than copied
  az ad sp show --id "$GRAPH" --query "appRoles[?value=='$1'].id | [0]" -o tsv
}

scope_id() {  # the delegated permission's id, likewise
  az ad sp show --id "$GRAPH" --query "oauth2PermissionScopes[?value=='$1'].id | [0]" -o tsv
}

new_guid() {
  if command -v uuidgen >/dev/null 2>&1; then
    uuidgen | tr '[:upper:]' '[:lower:]'
  else
    python3 -c 'import uuid; print(uuid.uuid4())'
  fi
}

# Refuse a console URL Entra ID or the console would refuse, before anything is created.
if [[ -n "$CONSOLE_URL" ]]; then
  case "$CONSOLE_URL" in
    https://?*) ;;
    http://localhost | http://localhost:* | http://127.0.0.1 | http://127.0.0.1:*) ;;
    *)
      echo "console URL '$CONSOLE_URL' is not https://HOST (http only on localhost)" >&2
      exit 2
      ;;
  esac
  if [[ "$CONSOLE_URL" == *[?#]* ]]; then
    echo "console URL '$CONSOLE_URL' has a query or fragment: give the console's address only" >&2
    exit 2
  fi
fi
DPO_ROLE_ID=$(new_guid)
VIEWER_ROLE_ID=$(new_guid)

APP_ID=$(az ad app create --display-name "$NAME" --sign-in-audience AzureADMyOrg \
  --query appId -o tsv)
echo "Created app registration $NAME: appId $APP_ID"

for permission in "${PERMISSIONS[@]}"; do
  az ad app permission add --id "$APP_ID" --api "$GRAPH" \
    --api-permissions "$(role_id "$permission")=Role" >/dev/null
  echo "  requested $permission (application)"
done
for scope in "${SIGN_IN_SCOPES[@]}"; do
  az ad app permission add --id "$APP_ID" --api "$GRAPH" \
    --api-permissions "$(scope_id "$scope")=Scope" >/dev/null
  echo "  requested $scope (delegated, for signing people in to the console)"
done

# The console's app roles, declared before the service principal is made so that it has
# them from the start. The ID token's roles claim carries their values.
ROLES_FILE=$(mktemp)
trap 'rm -f "$ROLES_FILE"' EXIT
cat >"$ROLES_FILE" <<JSON
[
  {
    "id": "$DPO_ROLE_ID",
    "value": "Sweeper.DPO",
    "displayName": "Data Protection Officer",
    "description": "Data Protection Officer: sees addresses, triages, downloads",
    "allowedMemberTypes": ["User"],
    "isEnabled": true
  },
  {
    "id": "$VIEWER_ROLE_ID",
    "value": "Sweeper.Viewer",
    "displayName": "Viewer",
    "description": "Viewer: masked, read only",
    "allowedMemberTypes": ["User"],
    "isEnabled": true
  }
]
JSON
az ad app update --id "$APP_ID" --app-roles @"$ROLES_FILE" >/dev/null
echo "  app roles Sweeper.DPO and Sweeper.Viewer declared"

if [[ -n "$CONSOLE_URL" ]]; then
  az ad app update --id "$APP_ID" --web-redirect-uris "$CONSOLE_URL/auth/callback" >/dev/null
  echo "  console redirect URI: $CONSOLE_URL/auth/callback"
else
  echo "  no console URL given (second argument or CONSOLE_URL): no redirect URI registered."
  echo "  The console cannot sign anyone in until it is, later, with:"
  echo "    az ad app update --id $APP_ID --web-redirect-uris https://HOST/auth/callback"
fi

SP_ID=$(az ad sp create --id "$APP_ID" --query id -o tsv)
# Only people assigned a role may sign in: Entra ID refuses everyone else on its own page.
az ad sp update --id "$SP_ID" --set appRoleAssignmentRequired=true >/dev/null
echo "Service principal object id: $SP_ID (assignment required)"

# Grants the application permissions and, for the whole tenant, the delegated sign-in scopes.
az ad app permission admin-consent --id "$APP_ID"
echo "Admin consent granted."

# A certificate, not a secret: the private key stays on this machine.
umask 077
az ad app credential reset --id "$APP_ID" --create-cert --years 1 \
  --query fileWithCertAndPrivateKey -o tsv > sweeper-cert-path.txt
echo "Certificate with private key written to: $(cat sweeper-cert-path.txt)"
echo "Move it to the sweeper host (mode 600) and set AZURE_CLIENT_CERTIFICATE_PATH to it."
echo "Set AZURE_TENANT_ID=$(az account show --query tenantId -o tsv) and AZURE_CLIENT_ID=$APP_ID."
if [[ -n "$CONSOLE_URL" ]]; then
  echo "In sweeper.toml: [console] url = \"$CONSOLE_URL\""
fi
echo "Give the DPO a role: ./assign-role.sh $APP_ID dpo@your.org DPO (or Viewer)"
