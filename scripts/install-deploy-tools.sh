#!/usr/bin/env bash
# Tools for the offline deployment checks in tests/deploy/:
#   promtool (Debian `prometheus`), amtool (Debian `prometheus-alertmanager`), helm (built with Go).
# Idempotent and quick when everything is present. terraform is optional (used when on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "install-deploy-tools: installing ${missing[*]}" >&2
    $sudo apt-get update -qq >&2
    # The packages' services are not started here (no init system); only the binaries are used.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
fi

"$here/install-helm.sh" >/dev/null
echo "install-deploy-tools: promtool $(command -v promtool), amtool $(command -v amtool), helm $("$here/install-helm.sh")" >&2
