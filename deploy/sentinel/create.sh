#!/usr/bin/env bash
# Creates what sweeper's [siem] export sends to, in a Log Analytics workspace (the one
# Microsoft Sentinel runs on): the custom table, a data collection endpoint, a data
# collection rule with the stream, and the Monitoring Metrics Publisher role on that rule for
# sweeper's identity. The table and the stream come from SweeperEvents_CL.json beside this
# script, the file the local test endpoint checks uploads against.
#
# Needs the Azure CLI signed in (az login) as someone who may create resources and assign
# roles in the resource group (Owner, or Contributor and User Access Administrator), and jq.
#
#   ./create.sh RESOURCE_GROUP WORKSPACE PRINCIPAL_OBJECT_ID [NAME]
#
# PRINCIPAL_OBJECT_ID is the object id of sweeper's service principal (create-app.sh in
# ../app-registration prints it) or of the Function App's managed identity
# (az functionapp identity show -g GROUP -n APP --query principalId -o tsv).
# Safe to run again: each resource is created or updated in place.
# At the end it prints the [siem] settings for sweeper.toml.
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,18p' "$0"
  exit 2
fi
GROUP="$1"
WORKSPACE="$2"
PRINCIPAL="$3"
NAME="${4:-sweeper}"
command -v jq >/dev/null || { echo "create.sh needs jq" >&2; exit 2; }

HERE="$(cd "$(dirname "$0")" && pwd)"
SCHEMA="$HERE/SweeperEvents_CL.json"
TABLE=$(jq -r .table "$SCHEMA")
STREAM=$(jq -r .stream "$SCHEMA")
ARM=https://management.azure.com

GROUP_ID=$(az group show -n "$GROUP" --query id -o tsv)
LOCATION=$(az monitor log-analytics workspace show -g "$GROUP" -n "$WORKSPACE" \
  --query location -o tsv)
WORKSPACE_ID=$(az monitor log-analytics workspace show -g "$GROUP" -n "$WORKSPACE" \
  --query id -o tsv)

# 1. The custom table. The Tables API spells the datetime type dateTime.
az rest --method put --url "$ARM$WORKSPACE_ID/tables/$TABLE?api-version=2022-10-01" \
  --body "$(jq '{properties: {schema: {name: .table, description: .description,
      columns: [.columns[] | {name, description,
        type: (if .type == "datetime" then "dateTime" else .type end)}]}}}' "$SCHEMA")" \
  >/dev/null
for _ in $(seq 60); do  # the table is created in the background; the rule needs it
  STATE=$(az rest --method get --url "$ARM$WORKSPACE_ID/tables/$TABLE?api-version=2022-10-01" \
    --query properties.provisioningState -o tsv)
  [ "$STATE" = "Succeeded" ] && break
  sleep 5
done
echo "Table $TABLE in workspace $WORKSPACE: $STATE"

# 2. The data collection endpoint: the URL sweeper posts to.
DCE=$(az rest --method put \
  --url "$ARM$GROUP_ID/providers/Microsoft.Insights/dataCollectionEndpoints/$NAME-dce?api-version=2022-06-01" \
  --body "$(jq -n --arg loc "$LOCATION" \
    '{location: $loc, properties: {networkAcls: {publicNetworkAccess: "Enabled"}}}')")
DCE_ID=$(jq -r .id <<<"$DCE")
ENDPOINT=$(jq -r .properties.logsIngestion.endpoint <<<"$DCE")
echo "Data collection endpoint $NAME-dce: $ENDPOINT"

# 3. The data collection rule: the stream as declared, passed to the table unchanged.
DCR=$(az rest --method put \
  --url "$ARM$GROUP_ID/providers/Microsoft.Insights/dataCollectionRules/$NAME-dcr?api-version=2022-06-01" \
  --body "$(jq --arg loc "$LOCATION" --arg dce "$DCE_ID" --arg ws "$WORKSPACE_ID" '{
    location: $loc,
    properties: {
      dataCollectionEndpointId: $dce,
      streamDeclarations: {(.stream): {columns: [.columns[] | {name, type}]}},
      destinations: {logAnalytics: [{name: "workspace", workspaceResourceId: $ws}]},
      dataFlows: [{streams: [.stream], destinations: ["workspace"],
                   transformKql: "source", outputStream: ("Custom-" + .table)}]
    }}' "$SCHEMA")")
DCR_ID=$(jq -r .id <<<"$DCR")
RULE_ID=$(jq -r .properties.immutableId <<<"$DCR")
echo "Data collection rule $NAME-dcr: $RULE_ID"

# 4. The one role sweeper needs: to send to this rule, and nothing else.
ROLE="Monitoring Metrics Publisher"
if [ "$(az role assignment list --assignee "$PRINCIPAL" --role "$ROLE" --scope "$DCR_ID" \
        --query 'length(@)' -o tsv)" = "0" ]; then
  az role assignment create --assignee-object-id "$PRINCIPAL" \
    --assignee-principal-type ServicePrincipal --role "$ROLE" --scope "$DCR_ID" >/dev/null
fi
echo "$ROLE on $NAME-dcr for $PRINCIPAL"

cat <<SETTINGS

Add to sweeper.toml (a role assignment can take a few minutes to apply: until then an
upload is refused with 403, and the records wait for the next export):

[siem]
endpoint = "$ENDPOINT"
rule_id = "$RULE_ID"
stream = "$STREAM"
SETTINGS
