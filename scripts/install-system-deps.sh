#!/usr/bin/env bash
# System packages of the local platform and its tests (Debian/Ubuntu):
#   redis-server (Redis), openjdk-17-jre-headless (Kafka broker, java 17+), maven (resolves the
#   Kafka jars), python3-venv (the project's .venv), chromium (the web UI's browser tests, driven
#   by Playwright: no browser download).
# Idempotent and instant when everything is present. Installs with apt-get as root (or sudo);
# otherwise prints the one apt-get line to run and exits non-zero.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ -x /usr/bin/chromium ] || missing+=(chromium)

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n1 |
        awk '{ if ($1 == 1) print $2; else print $1 }'
}
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
    missing+=(openjdk-17-jre-headless)
fi
python="${PYTHON:-python3}"
if ! "$python" -c "import venv, ensurepip" >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
else
    echo "install-system-deps: missing ${missing[*]}: run \`sudo apt-get install ${missing[*]}\`" >&2
    exit 1
fi

echo "install-system-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq >&2
# The packages' own services are not enabled here: `coelho up` runs its own instances.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
