#!/usr/bin/env bash
# Creates sweeper's app registration with exactly the Graph application permissions it
# needs, grants admin consent, and gives it a certificate. Needs the Azure CLI, signed in
# (az login) as someone who may consent: a Privileged Role Administrator or Global Admin.
#
#   ./create-app.sh [display-name]
#
# Then scope Mail.Send to the digest's sender mailbox with scope-mail-send.ps1 and remove
# the tenant-wide Mail.Send consent, as that script explains.
set -euo pipefail

NAME="${1:-sweeper}"
GRAPH=00000003-0000-0000-c000-000000000000   # Microsoft Graph's well-known app id
PERMISSIONS=(Mail.ReadBasic.All User.Read.All Domain.Read.All Mail.Send)

role_id() {  # the application role's id, looked up rather than copied
  az ad sp show --id "$GRAPH" --query "appRoles[?value=='$1'].id | [0]" -o tsv
}

APP_ID=$(az ad app create --display-name "$NAME" --sign-in-audience AzureADMyOrg \
  --query appId -o tsv)
echo "Created app registration $NAME: appId $APP_ID"

for permission in "${PERMISSIONS[@]}"; do
  az ad app permission add --id "$APP_ID" --api "$GRAPH" \
    --api-permissions "$(role_id "$permission")=Role" >/dev/null
  echo "  requested $permission (application)"
done

SP_ID=$(az ad sp create --id "$APP_ID" --query id -o tsv)
az ad app permission admin-consent --id "$APP_ID"
echo "Admin consent granted. Service principal object id: $SP_ID"

# A certificate, not a secret: the private key stays on this machine.
umask 077
az ad app credential reset --id "$APP_ID" --create-cert --years 1 \
  --query fileWithCertAndPrivateKey -o tsv > sweeper-cert-path.txt
echo "Certificate with private key written to: $(cat sweeper-cert-path.txt)"
echo "Move it to the sweeper host (mode 600) and set AZURE_CLIENT_CERTIFICATE_PATH to it."
echo "Set AZURE_TENANT_ID=$(az account show --query tenantId -o tsv) and AZURE_CLIENT_ID=$APP_ID."
