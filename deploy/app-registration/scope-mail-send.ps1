# Limits sweeper's Mail.Send to the digest's sender mailbox with Exchange Online
# "RBAC for Applications". Run in PowerShell with the ExchangeOnlineManagement module, as an
# Exchange administrator:
#
#   ./scope-mail-send.ps1 -AppId <appId> -ServicePrincipalId <object id> -Sender sweeper@contoso.org
#
# Grants add up: as long as the tenant-wide Mail.Send consent from create-app.sh exists, the
# app can still send as anyone. This script removes that consent at the end (with -WhatIf
# first if you want to see it), so that only the scoped grant remains.
param(
  [Parameter(Mandatory)] [string] $AppId,
  [Parameter(Mandatory)] [string] $ServicePrincipalId,
  [Parameter(Mandatory)] [string] $Sender
)
$ErrorActionPreference = "Stop"

Connect-ExchangeOnline

New-ServicePrincipal -AppId $AppId -ObjectId $ServicePrincipalId -DisplayName "sweeper"
New-ManagementScope -Name "sweeper digest sender" `
  -RecipientRestrictionFilter "PrimarySmtpAddress -eq '$Sender'"
New-ManagementRoleAssignment -App $AppId -Role "Application Mail.Send" `
  -CustomResourceScope "sweeper digest sender"

# Check: InScope must be True for the sender and False for anyone else.
Test-ServicePrincipalAuthorization -Identity $AppId -Resource $Sender

# Remove the tenant-wide Mail.Send grant (the Entra admin consent), keeping the others.
Connect-MgGraph -Scopes "AppRoleAssignment.ReadWrite.All", "Application.Read.All"
$graph = Get-MgServicePrincipal -Filter "appId eq '00000003-0000-0000-c000-000000000000'"
$mailSend = ($graph.AppRoles | Where-Object Value -eq "Mail.Send").Id
Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $ServicePrincipalId |
  Where-Object AppRoleId -eq $mailSend |
  ForEach-Object {
    Remove-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $ServicePrincipalId `
      -AppRoleAssignmentId $_.Id
  }
Write-Host "Tenant-wide Mail.Send removed; Mail.Send now reaches $Sender only."
