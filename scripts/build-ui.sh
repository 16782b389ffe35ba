#!/usr/bin/env bash
# Builds the web UI (coelho_serving/ui -> coelho_serving/ui/build, served by the API at /ui)
# when the build is missing or older than its sources: `npm ci` from the committed
# package-lock.json (when node_modules is missing or stale), then `npm run build`.
# Instant when the build is current. A missing or old Node is one line and a non-zero exit.
set -euo pipefail

ui="$(cd "$(dirname "$0")/.." && pwd)/coelho_serving/ui"
min_major=20
min_minor=19

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "build-ui: node/npm not found (they build the web UI): install Node.js ${min_major}.${min_minor}+ with npm" >&2
    exit 1
fi
version="$(node -p 'process.versions.node')"
major="${version%%.*}"
rest="${version#*.}"
minor="${rest%%.*}"
if [ "$major" -lt "$min_major" ] || { [ "$major" -eq "$min_major" ] && [ "$minor" -lt "$min_minor" ]; }; then
    echo "build-ui: Node.js ${min_major}.${min_minor}+ is needed to build the web UI, found ${version}" >&2
    exit 1
fi

cd "$ui"
sources=(src static scripts package.json package-lock.json svelte.config.js vite.config.ts tsconfig.json)
if [ ! -f node_modules/.package-lock.json ] ||
    [ -n "$(find package-lock.json -newer node_modules/.package-lock.json)" ]; then
    echo "build-ui: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
if [ -f build/index.html ] && [ -z "$(find "${sources[@]}" -newer build/index.html -print -quit)" ]; then
    exit 0
fi
echo "build-ui: npm run build" >&2
npm run build --silent >&2
echo "build-ui: built $(du -sh build | cut -f1) in coelho_serving/ui/build" >&2
