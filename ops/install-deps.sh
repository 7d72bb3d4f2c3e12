#!/usr/bin/env bash
# Installs the Debian packages Eddy builds, runs and tests with. Idempotent: when every package
# is already installed it changes nothing and asks no registry. Swift packages come through SwiftPM.
#
#   source ops/install-deps.sh        what building and running need (ops/run.sh)
#   source ops/install-deps.sh test   that, and what the tests and benchmarks use (ops/test.sh)
set -euo pipefail

packages=(
    pkg-config
    librdkafka-dev   # Kafka client (and its mock cluster, used by `eddy dev-broker` and the tests)
    libhiredis-dev   # Redis client
    liblmdb-dev      # checkpoint store
    libssl-dev       # TLS for rediss:// (OpenSSL; Debian's hiredis 0.14 has none)
    ca-certificates  # the system CA store rediss:// verifies against by default
    redis-server     # the sink in the demo and in tests (with redis-cli)
)
if [ "${1:-}" = test ]; then
    packages+=(
        lmdb-utils       # mdb_dump / mdb_load: the state tests read and write a state directory from outside
        openssl          # the TLS tests make their CA and certificates with the openssl command
        kcat             # reference consumer for benchmarks and acceptance checks
        libsimdjson-dev  # reference decoder for the hot-path benchmark
        chromium         # headless browser: the dashboard test loads the page and takes a screenshot
        fonts-dejavu-core  # a font for that screenshot (a bare machine has none)
        python3          # the SQL tests' oracle: its sqlite3 module computes the same views in batch
        postgresql-client  # psql: the PostgreSQL-side tests query `eddy run --pg` with it
        python3-venv     # a venv for psycopg and asyncpg, the PostgreSQL-side tests' Python clients (below)
    )
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "ops/install-deps.sh: installing ${missing[*]}" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# psycopg and asyncpg (from PyPI) in a venv of the tests' own, where Tests/EddyCLITests/PostgresCLITests looks
# (EDDY_TEST_VENV overrides). psycopg's pure-Python build uses Debian's libpq, which postgresql-client brings.
if [ "${1:-}" = test ]; then
    venv="${EDDY_TEST_VENV:-$HOME/.cache/eddy/test-venv}"
    if ! "$venv/bin/python" -c 'import psycopg, asyncpg' >/dev/null 2>&1; then
        echo "ops/install-deps.sh: installing psycopg and asyncpg into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q 'psycopg>=3.1' 'asyncpg>=0.29'
    fi
fi

if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH" && break
    done
fi
command -v swift >/dev/null 2>&1 || { echo "ops/install-deps.sh: no Swift toolchain (6.1 or later) on PATH; install one from swift.org" >&2; exit 1; }
