#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are installed: the test suite starts a throwaway
# server from them (initdb + pg_ctl, as the postgres user, on 127.0.0.1) for the PostgreSQL
# half of every storage test. Installs the Debian package `postgresql` when they are
# missing; does nothing when they are there. Never starts or configures a system server.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
    exit 0
fi

echo "install-postgres: initdb not found; installing the Debian package postgresql"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
        SUDO="sudo"
    else
        echo "install-postgres: need root (or sudo) to apt-get install postgresql" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d 101: the package must not start a system-wide server as a side effect
if [ ! -e /usr/sbin/policy-rc.d ]; then
    echo 'exit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq postgresql
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || {
    echo "install-postgres: postgresql installed but no initdb under /usr/lib/postgresql" >&2
    exit 1
}
