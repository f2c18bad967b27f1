# Installs @PROJECT@ @VERSION@ on Windows.
#
#   irm @SCRIPT_URL@ | iex
#   & ([scriptblock]::Create((irm @SCRIPT_URL@))) -To C:\Tools -BaseUrl https://mirror.example
#   (or $env:@DIR_VAR@ and $env:@BASE_URL_VAR@ with `irm | iex`)
#
# Written by shipit. The SHA-256 of every archive this script may download is written below:
# the script is the trust anchor, and a download that does not match is refused before it is
# unpacked. Windows PowerShell 5.1 or PowerShell 7.
param(
    [string]$To = '',
    [string]$BaseUrl = '',
    [switch]$Uninstall
)
$ErrorActionPreference = 'Stop'
# Windows PowerShell 5.1 downloads far slower while it draws a progress bar.
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 3

$Project = @PROJECT_Q@
$Version = @VERSION_Q@
$DefaultBaseUrl = @BASE_URL_Q@
# Target, archive file, SHA-256.
$Archives = @(
@ARCHIVES@
)
$Binaries = @(@BINARIES@)

function Say([string]$Text) { Write-Host "${Project}: $Text" }
function Fail([string]$Text) { throw "${Project}: $Text" }

if (-not $To) { $To = $env:@DIR_VAR@ }
if (-not $To) { $To = Join-Path $env:LOCALAPPDATA "Programs\$Project\bin" }
if (-not $BaseUrl) { $BaseUrl = $env:@BASE_URL_VAR@ }
if (-not $BaseUrl) { $BaseUrl = $DefaultBaseUrl }

if ($Uninstall) {
    foreach ($Bin in $Binaries) {
        $Path = Join-Path $To "$Bin.exe"
        if (Test-Path -LiteralPath $Path) {
            Remove-Item -LiteralPath $Path -Force
            Say "removed $Path"
        }
    }
    return
}

$Arch = $env:PROCESSOR_ARCHITEW6432
if (-not $Arch) { $Arch = $env:PROCESSOR_ARCHITECTURE }
switch ($Arch) {
    'AMD64' { $Wanted = @('windows-x64') }
    'ARM64' { $Wanted = @('windows-arm64', 'windows-x64') }
    default { Fail "no build for the $Arch architecture" }
}
$Choice = $null
foreach ($Target in $Wanted) {
    $Choice = $Archives | Where-Object { $_.Target -eq $Target } | Select-Object -First 1
    if ($Choice) { break }
}
if (-not $Choice) { Fail "no build of $Project $Version for $Arch" }

$Temp = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName())
New-Item -ItemType Directory -Path $Temp | Out-Null
try {
    $Url = $BaseUrl.TrimEnd('/') + '/' + $Choice.File
    $Download = Join-Path $Temp $Choice.File
    Say "downloading $Url"
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    Invoke-WebRequest -UseBasicParsing -Uri $Url -OutFile $Download
    $Sum = (Get-FileHash -Algorithm SHA256 -LiteralPath $Download).Hash.ToLowerInvariant()
    if ($Sum -ne $Choice.Sha256) {
        Fail "$($Choice.File) does not match its SHA-256 (want $($Choice.Sha256), got $Sum): refused, nothing installed"
    }
    $Unpacked = Join-Path $Temp 'x'
    Expand-Archive -LiteralPath $Download -DestinationPath $Unpacked
    New-Item -ItemType Directory -Force -Path $To | Out-Null
    foreach ($Bin in $Binaries) {
        $Found = Get-ChildItem -LiteralPath $Unpacked -Recurse -File -Filter "$Bin.exe" | Select-Object -First 1
        if (-not $Found) { Fail "$($Choice.File) holds no $Bin.exe" }
        # A new file beside the old one, moved over it.
        $Part = Join-Path $To ".$Bin.exe.part"
        Copy-Item -LiteralPath $Found.FullName -Destination $Part -Force
        Move-Item -LiteralPath $Part -Destination (Join-Path $To "$Bin.exe") -Force
        Say "installed $(Join-Path $To "$Bin.exe")"
    }
} finally {
    Remove-Item -LiteralPath $Temp -Recurse -Force -ErrorAction SilentlyContinue
}

$UserPath = [Environment]::GetEnvironmentVariable('Path', 'User')
if (-not (($UserPath -split ';') -contains $To)) {
    Say "$To is not on your PATH; add it to your user Path (Settings, Environment variables)"
}
