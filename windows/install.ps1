#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
Installs eipclaim on Windows: the binary, its log folder and two scheduled
tasks that run as SYSTEM.

.DESCRIPTION
- copies eipclaim.exe to "C:\Program Files\eipclaim\eipclaim.exe";
- creates C:\ProgramData\eipclaim (the logs), which only SYSTEM and the
  Administrators can read and write;
- registers, from the task XML files beside this script:
    \eipclaim\claim   30 seconds after boot: eipclaim claim
    \eipclaim\hosts   every minute: eipclaim hosts (unless -NoHostsTask)

Run it again to update the binary or change the settings: it replaces what
it installed and changes nothing else. -WhatIf shows what it would do.

.PARAMETER Binary
The eipclaim executable to install. Default: eipclaim.exe, or else
eipclaim_windows_amd64.exe, beside this script.

.PARAMETER Role
The role this instance claims (adds --role to the claim task). Default: the
role: of the configuration.

.PARAMETER Config
Where the configuration is (adds --config to both tasks): s3://bucket/key,
https://host/path or a file. Default: the instance user-data. On Windows the
user-data is often an EC2Launch script, so an S3 object is the usual choice.

.PARAMETER HostsFrom
Build the hosts file from the role table alone (the hosts task runs
eipclaim hosts --from HostsFrom, without --config): s3://bucket/key (the
machine needs only s3:GetObject on that object), https://host/path or a file.
No EC2 permission, no instance metadata: for clients outside the cloud too.

.PARAMETER HostsPublic
The hosts task writes public addresses (--public): for clients outside the VPC.

.PARAMETER NoHostsTask
Do not register the hosts file task (and remove it if an earlier run did).

.PARAMETER StartNow
Start the claim task now instead of waiting for the next boot.

.EXAMPLE
.\install.ps1 -Config s3://fleet-config/eipclaim.yaml -Role master-db -StartNow

.EXAMPLE
.\install.ps1 -HostsFrom https://fleet.example.com/roles.json -HostsPublic

.EXAMPLE
.\install.ps1 -Binary .\eipclaim_windows_amd64.exe -NoHostsTask -WhatIf
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $Binary,
    [ValidatePattern('^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')]
    [string] $Role,
    [ValidatePattern('^[^"]+$')]
    [string] $Config,
    [ValidatePattern('^[^"]+$')]
    [string] $HostsFrom,
    [switch] $HostsPublic,
    [switch] $NoHostsTask,
    # Also install eipclaim watch as the Windows service eipclaim-watch
    # (automatic start, restarted on failure) for automatic failover.
    [switch] $Watch,
    [switch] $StartNow
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# The 64-bit Program Files even from a 32-bit PowerShell.
$ProgramFiles = if ($env:ProgramW6432) { $env:ProgramW6432 } else { $env:ProgramFiles }
$InstallDir = Join-Path $ProgramFiles 'eipclaim'
$Exe = Join-Path $InstallDir 'eipclaim.exe'
$DataDir = Join-Path $env:ProgramData 'eipclaim'
$TaskPath = '\eipclaim\'
$TaskNamespace = 'http://schemas.microsoft.com/windows/2004/02/mit/task'

function Find-Binary {
    if ($Binary) {
        return (Resolve-Path -LiteralPath $Binary).ProviderPath
    }
    foreach ($name in 'eipclaim.exe', 'eipclaim_windows_amd64.exe') {
        $p = Join-Path $PSScriptRoot $name
        if (Test-Path -LiteralPath $p -PathType Leaf) {
            return $p
        }
    }
    throw "no eipclaim.exe or eipclaim_windows_amd64.exe beside $PSScriptRoot\install.ps1: pass -Binary PATH"
}

function Stop-EipclaimTasks {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param()
    $running = @(Get-ScheduledTask -TaskPath $TaskPath -ErrorAction SilentlyContinue |
        Where-Object { $_.State -eq 'Running' })
    foreach ($t in $running) {
        if ($PSCmdlet.ShouldProcess("$($t.TaskPath)$($t.TaskName)", 'Stop the running task')) {
            Stop-ScheduledTask -TaskPath $t.TaskPath -TaskName $t.TaskName
        }
    }
}

function Install-Binary {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string] $Source)
    if (-not (Test-Path -LiteralPath $InstallDir -PathType Container)) {
        New-Item -ItemType Directory -Path $InstallDir | Out-Null
    }
    if ((Test-Path -LiteralPath $Exe -PathType Leaf) -and
        (Get-FileHash -LiteralPath $Exe).Hash -eq (Get-FileHash -LiteralPath $Source).Hash) {
        Write-Host "$Exe is up to date"
        return
    }
    # A running task holds the executable open.
    Stop-EipclaimTasks
    Copy-Item -LiteralPath $Source -Destination $Exe -Force
    Write-Host "installed $Exe"
}

# Install-DataDir creates the log folder, readable and writable by SYSTEM and
# the Administrators only (the logs name instances, roles and addresses).
function Install-DataDir {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param()
    if (-not (Test-Path -LiteralPath $DataDir -PathType Container)) {
        New-Item -ItemType Directory -Path $DataDir | Out-Null
    }
    if ($PSCmdlet.ShouldProcess($DataDir, 'Allow only SYSTEM and Administrators')) {
        # icacls, by SID (names are localized): drop the inherited rules
        # (Users may read ProgramData), grant full control to SYSTEM
        # (S-1-5-18) and the Administrators (S-1-5-32-544), for the folder
        # and what it holds. The owner stays as it is.
        $out = & icacls.exe $DataDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' /remove:g '*S-1-5-32-545' 2>&1
        if ($LASTEXITCODE -ne 0) {
            throw "icacls $DataDir failed ($LASTEXITCODE): $out"
        }
    }
}

# Register-EipclaimTask registers the task XML file as $TaskPath$Name, with
# the paths of this machine and the extra arguments.
function Register-EipclaimTask {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string] $Name, [string] $XmlFile, [string] $ExtraArguments)
    $path = Join-Path $PSScriptRoot $XmlFile
    $doc = New-Object System.Xml.XmlDocument
    $doc.PreserveWhitespace = $true
    $doc.LoadXml((Get-Content -LiteralPath $path -Raw -Encoding UTF8))
    $ns = New-Object System.Xml.XmlNamespaceManager($doc.NameTable)
    $ns.AddNamespace('t', $TaskNamespace)
    $exec = $doc.SelectSingleNode('/t:Task/t:Actions/t:Exec', $ns)
    if ($null -eq $exec) {
        throw "${path}: no Task/Actions/Exec element"
    }
    $exec.SelectSingleNode('t:Command', $ns).InnerText = '"' + $Exe + '"'
    $arguments = $exec.SelectSingleNode('t:Arguments', $ns)
    $arguments.InnerText = $arguments.InnerText.Replace('C:\ProgramData\eipclaim', $DataDir) + $ExtraArguments
    $workDir = $exec.SelectSingleNode('t:WorkingDirectory', $ns)
    if ($null -ne $workDir) {
        $workDir.InnerText = $DataDir
    }
    # The XML goes to the Task Scheduler as a string: drop the declaration,
    # whose encoding="UTF-8" would not match.
    foreach ($node in @($doc.ChildNodes)) {
        if ($node -is [System.Xml.XmlDeclaration]) {
            [void] $doc.RemoveChild($node)
        }
    }
    $full = "$TaskPath$Name"
    if ($PSCmdlet.ShouldProcess($full, "Register the task: $Exe $($arguments.InnerText)")) {
        Register-ScheduledTask -TaskPath $TaskPath -TaskName $Name -Xml $doc.OuterXml -Force | Out-Null
        Write-Host "registered $full"
    }
}

function Unregister-EipclaimTask {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string] $Name)
    $task = Get-ScheduledTask -TaskPath $TaskPath -TaskName $Name -ErrorAction SilentlyContinue
    if ($null -ne $task -and $PSCmdlet.ShouldProcess("$TaskPath$Name", 'Unregister the task')) {
        if ($task.State -eq 'Running') {
            Stop-ScheduledTask -TaskPath $TaskPath -TaskName $Name
        }
        Unregister-ScheduledTask -TaskPath $TaskPath -TaskName $Name -Confirm:$false
        Write-Host "unregistered $TaskPath$Name"
    }
}

$source = Find-Binary
Install-Binary -Source $source
Install-DataDir

$common = ''
if ($Config) {
    $common += " --config `"$Config`""
}
$claimArguments = $common
if ($Role) {
    $claimArguments += " --role $Role"
}
Register-EipclaimTask -Name 'claim' -XmlFile 'eipclaim-task.xml' -ExtraArguments $claimArguments
if ($NoHostsTask) {
    Unregister-EipclaimTask -Name 'hosts'
} else {
    $hostsArguments = $common
    if ($HostsFrom) {
        # The role table alone: no configuration, no EC2, no IMDS.
        $hostsArguments = " --from `"$HostsFrom`""
    }
    if ($HostsPublic) {
        $hostsArguments += ' --public'
    }
    Register-EipclaimTask -Name 'hosts' -XmlFile 'eipclaim-hosts-task.xml' -ExtraArguments $hostsArguments
}

if ($Watch -and $PSCmdlet.ShouldProcess('eipclaim-watch', 'Install the watch service')) {
    $svcName = 'eipclaim-watch'
    $binPath = "`"$Exe`" watch$claimArguments --log-file `"$DataDir\watch.log`""
    $existing = Get-Service -Name $svcName -ErrorAction SilentlyContinue
    if ($existing) {
        Stop-Service -Name $svcName -ErrorAction SilentlyContinue
        & sc.exe config $svcName binPath= $binPath start= auto | Out-Null
    } else {
        New-Service -Name $svcName -BinaryPathName $binPath -DisplayName 'eipclaim watch' `
            -Description 'Hold or stand by for this instance''s role Elastic IP (eipclaim watch)' -StartupType Automatic | Out-Null
    }
    # Restarted 5s after a failure, like Restart=always on Linux.
    & sc.exe failure $svcName reset= 86400 actions= restart/5000/restart/5000/restart/5000 | Out-Null
    Start-Service -Name $svcName
    Write-Host "service $svcName running: see $DataDir\watch.log"
}

if ($StartNow -and $PSCmdlet.ShouldProcess("${TaskPath}claim", 'Start the task now')) {
    Start-ScheduledTask -TaskPath $TaskPath -TaskName 'claim'
    Write-Host "started ${TaskPath}claim: see $DataDir\eipclaim.log"
}

if (-not $WhatIfPreference) {
    Get-ScheduledTask -TaskPath $TaskPath | Format-Table -AutoSize TaskPath, TaskName, State
}
