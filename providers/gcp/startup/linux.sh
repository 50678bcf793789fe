#!/bin/sh
# The default startup script of a Linux VM (metadata key `startup-script`).
# Everything it needs is in the instance's metadata, put there by the
# platform for this one run attempt: where to report, the attempt's own
# credential, and where to download the runner (when the image has none).
# No service-account key is ever on the VM.
set -u
md() {
  curl -sf -H 'Metadata-Flavor: Google' \
    "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"
}
runner=sample-runner
url="$(md runner-url || true)"
if [ -n "$url" ]; then
  runner=/usr/local/bin/sample-runner
  curl -sfL --retry 5 -o "$runner" "$url" && chmod 755 "$runner"
fi
"$runner" --report-url "$(md report-url)" --token "$(md runner-token)"
# The attempt is over (or could not start): the VM is not needed any more.
# The platform deletes it; shutting down stops the bill sooner.
shutdown -h now
