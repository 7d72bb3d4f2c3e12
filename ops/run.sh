#!/usr/bin/env bash
# The main job (README): installs what is missing, builds eddy, and runs the example pipeline.
# For now it checks the example pipeline; `eddy run` on a dev broker and a local redis-server follows.
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/install-deps.sh

swift build -c release --product eddy
eddy=$(swift build -c release --show-bin-path)/eddy
KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092} REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} \
    "$eddy" check examples/seed_pipeline.sql
