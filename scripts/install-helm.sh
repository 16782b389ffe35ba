#!/usr/bin/env bash
# Build a Helm 3 binary from source with `go install` (only the Go module proxy is needed).
# Idempotent: returns at once when the pinned version is already built.
# Prints the path of the binary on stdout.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
TOOLS_DIR="${COELHO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/coelho-tools}"
BIN_DIR="$TOOLS_DIR/helm-$HELM_VERSION/bin"
HELM="$BIN_DIR/helm"

if [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
    echo "$HELM"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "install-helm: 'go' is not on PATH; install Go or put a helm binary at $HELM" >&2
    exit 1
fi

mkdir -p "$BIN_DIR"
echo "install-helm: building helm $HELM_VERSION into $BIN_DIR (a few minutes the first time)" >&2
GOBIN="$BIN_DIR" GOFLAGS="${GOFLAGS:--trimpath}" \
    go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
"$HELM" version --short >&2
echo "$HELM"
