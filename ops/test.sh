#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds everything, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/install-deps.sh test

swift build --build-tests
# Tests start their own redis-server and Kafka mock cluster on free loopback ports; see Sources/EddyTestSupport.
# One test at a time: many tests block their thread while they wait for a daemon or a server (on purpose: they
# drive real processes), and on two cores two such tests occupy Swift's whole cooperative pool, starving the
# HTTP tests' async server of threads. Serial, the suite takes about two minutes here.
swift test --skip-build --no-parallel
