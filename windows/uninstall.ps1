#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
Removes what install.ps1 installed: the \eipclaim\ scheduled tasks and
"C:\Program Files\eipclaim". The logs in C:\ProgramData\eipclaim stay unless
-Purge is given.

.DESCRIPTION
The Elastic IP stays where it is: to give it back first, run
  & "C:\Program Files\eipclaim\eipclaim.exe" release
Running it again, or on a machine without eipclaim, does nothing. -WhatIf
shows what it would do.

.PARAMETER Purge
Also remove C:\ProgramData\eipclaim and its logs.

.EXAMPLE
.\uninstall.ps1 -Purge
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [switch] $Purge
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ProgramFiles = if ($env:ProgramW6432) { $env:ProgramW6432 } else { $env:ProgramFiles }
$InstallDir = Join-Path $ProgramFiles 'eipclaim'
$DataDir = Join-Path $env:ProgramData 'eipclaim'
$TaskPath = '\eipclaim\'

foreach ($name in 'claim', 'hosts') {
    $task = Get-ScheduledTask -TaskPath $TaskPath -TaskName $name -ErrorAction SilentlyContinue
    if ($null -ne $task -and $PSCmdlet.ShouldProcess("$TaskPath$name", 'Unregister the task')) {
        if ($task.State -eq 'Running') {
            Stop-ScheduledTask -TaskPath $TaskPath -TaskName $name
        }
        Unregister-ScheduledTask -TaskPath $TaskPath -TaskName $name -Confirm:$false
        Write-Host "unregistered $TaskPath$name"
    }
}

# The watch service, if install.ps1 -Watch created it.
$svc = Get-Service -Name 'eipclaim-watch' -ErrorAction SilentlyContinue
if ($null -ne $svc -and $PSCmdlet.ShouldProcess('eipclaim-watch', 'Stop and delete the service')) {
    Stop-Service -Name 'eipclaim-watch' -ErrorAction SilentlyContinue
    & sc.exe delete 'eipclaim-watch' | Out-Null
    Write-Host 'deleted the service eipclaim-watch'
}

# The \eipclaim\ task folder, if it is empty now.
try {
    $scheduler = New-Object -ComObject Schedule.Service
    $scheduler.Connect()
    $folder = $scheduler.GetFolder('\eipclaim')
    if ($folder.GetTasks(1).Count -eq 0 -and $folder.GetFolders(0).Count -eq 0 -and
        $PSCmdlet.ShouldProcess('\eipclaim', 'Delete the empty task folder')) {
        $scheduler.GetFolder('\').DeleteFolder('eipclaim', 0)
    }
} catch {
    # No such folder: nothing to do.
}

if (Test-Path -LiteralPath $InstallDir) {
    Remove-Item -LiteralPath $InstallDir -Recurse -Force
    if (-not $WhatIfPreference) {
        Write-Host "removed $InstallDir"
    }
}

if ($Purge -and (Test-Path -LiteralPath $DataDir)) {
    Remove-Item -LiteralPath $DataDir -Recurse -Force
    if (-not $WhatIfPreference) {
        Write-Host "removed $DataDir"
    }
}
