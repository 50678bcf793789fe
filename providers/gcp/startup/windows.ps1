# The default startup script of a Windows VM (metadata key
# `windows-startup-script-ps1`). Everything it needs is in the instance's
# metadata, put there by the platform for this one run attempt: where to
# report, the attempt's own credential, and where to download the runner.
# No service-account key is ever on the VM.
$ErrorActionPreference = 'Stop'
function Get-Metadata([string]$Key) {
  Invoke-RestMethod -Headers @{ 'Metadata-Flavor' = 'Google' } `
    -Uri "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$Key"
}
try {
  $runner = Join-Path $env:ProgramData 'sample-platform\sample-runner.exe'
  New-Item -ItemType Directory -Force -Path (Split-Path $runner) | Out-Null
  Invoke-WebRequest -UseBasicParsing -Uri (Get-Metadata 'runner-url') -OutFile $runner
  & $runner --report-url (Get-Metadata 'report-url') --token (Get-Metadata 'runner-token')
} finally {
  # The attempt is over (or could not start): the VM is not needed any more.
  # The platform deletes it; shutting down stops the bill sooner.
  Stop-Computer -Force
}
