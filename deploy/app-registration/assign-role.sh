#!/usr/bin/env bash
# Gives a person one of the console's app roles on sweeper's app registration. Needs the
# Azure CLI, signed in (az login) as someone who may assign people to enterprise
# applications: a Cloud Application Administrator, Application Administrator or Global Admin.
#
#   ./assign-role.sh APP_ID person@your.org DPO|Viewer
#
# The role reaches the console at the person's next sign-in (it is read from the ID token).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 APP_ID person@your.org DPO|Viewer" >&2
  exit 2
fi
APP_ID="$1"
PERSON="$2"
case "$3" in
  DPO | dpo | Sweeper.DPO) ROLE=Sweeper.DPO ;;
  Viewer | viewer | Sweeper.Viewer) ROLE=Sweeper.Viewer ;;
  *)
    echo "role '$3' is not DPO or Viewer" >&2
    exit 2
    ;;
esac
GRAPH_URL=https://graph.microsoft.com/v1.0

SP_ID=$(az ad sp show --id "$APP_ID" --query id -o tsv)
ROLE_ID=$(az ad sp show --id "$APP_ID" --query "appRoles[?value=='$ROLE'].id | [0]" -o tsv)
if [[ -z "$ROLE_ID" ]]; then
  echo "app $APP_ID declares no role $ROLE: was it made by create-app.sh?" >&2
  exit 1
fi
USER_ID=$(az ad user show --id "$PERSON" --query id -o tsv)

az rest --method POST --uri "$GRAPH_URL/servicePrincipals/$SP_ID/appRoleAssignedTo" \
  --headers "Content-Type=application/json" \
  --body "{\"principalId\": \"$USER_ID\", \"resourceId\": \"$SP_ID\", \"appRoleId\": \"$ROLE_ID\"}" \
  >/dev/null
echo "$PERSON now holds $ROLE on $APP_ID."
echo "Assignments: az rest --method GET --uri $GRAPH_URL/servicePrincipals/$SP_ID/appRoleAssignedTo"
