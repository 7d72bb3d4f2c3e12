#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds everything, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/install-deps.sh test

swift build --build-tests
# Tests start their own redis-server and Kafka mock cluster on free loopback ports; see Sources/EddyTestSupport.
swift test --skip-build
