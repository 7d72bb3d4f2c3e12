#!/usr/bin/env bash
# The main job (README): installs what is missing, builds eddy, and runs the example pipeline on embedded
# defaults — `eddy dev-broker` (Kafka protocol, in memory), a `redis-server` on a free loopback port, the load
# generator, and `eddy run examples/seed_pipeline.sql` — printing the live counts from Redis until Ctrl-C.
#
#   EDDY_DEMO_RATE      events per second from the load generator (default 200; the original sends one every 3 s)
#   EDDY_DEMO_SECONDS   stop by itself after this many seconds (default: run until Ctrl-C)
#   EDDY_DEMO_HTTP_PORT first port to try for the dashboard (default 9187)
set -euo pipefail
cd "$(dirname "$0")/.."
source ops/install-deps.sh run

echo "ops/run.sh: building eddy (release)…" >&2
swift build -c release --product eddy >&2
eddy=$(swift build -c release --show-bin-path)/eddy

rate=${EDDY_DEMO_RATE:-200}
seconds=${EDDY_DEMO_SECONDS:-}
work=.eddy/demo
rm -rf "$work" && mkdir -p "$work"

# The first port from $1 on which nothing listens on 127.0.0.1.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo >&2
    echo "ops/run.sh: stopping (eddy run takes a final checkpoint)…" >&2
    # The daemon first, so that its final checkpoint and sink flush still find Kafka and Redis.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    echo "ops/run.sh: stopped; logs and state are in $work/" >&2
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Kafka: eddy's own dev broker. Its first line is bootstrap=HOST:PORT.
"$eddy" dev-broker --topic test:8 >"$work/dev-broker.out" 2>"$work/dev-broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^bootstrap=' "$work/dev-broker.out" 2>/dev/null && break; sleep 0.1; done
brokers=$(sed -n 's/^bootstrap=//p' "$work/dev-broker.out")
[ -n "$brokers" ] || { echo "ops/run.sh: eddy dev-broker did not start; see $work/dev-broker.log" >&2; exit 1; }

# Redis, on a free loopback port, in the demo's folder.
redis_port=$(free_port 6390)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$PWD/$work" --save "" --appendonly no \
    --logfile "$PWD/$work/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The load generator, as the original pipeline's users run it (faster, so the counts move).
"$eddy" produce --brokers "$brokers" --topic test --rate "$rate" 2>"$work/produce.log" &
pids+=($!)

# The pipeline, exactly as written, with hosts from the environment.
http_port=$(free_port "${EDDY_DEMO_HTTP_PORT:-9187}")
KAFKA_BROKERS=$brokers REDIS_URL=redis://127.0.0.1:$redis_port \
    "$eddy" run examples/seed_pipeline.sql --state-dir "$work/state" --http "127.0.0.1:$http_port" \
    >"$work/run.out" 2>"$work/run.log" &
pids+=($!)
run_pid=$!

cat >&2 <<INFO
ops/run.sh: running the example pipeline
  Kafka (eddy dev-broker) $brokers, topic 'test' (8 partitions), $rate events/s from eddy produce
  Redis                   redis://127.0.0.1:$redis_port   (try: redis-cli -p $redis_port GET click)
  Dashboard               http://127.0.0.1:$http_port/   (metrics: /metrics)
  Logs and state          $work/
Live counts from Redis (Ctrl-C stops everything, with a final checkpoint):
INFO

started=$SECONDS
while kill -0 "$run_pid" 2>/dev/null; do
    counts=()
    total=0
    for event in click scroll submit download focus; do
        value=$(redis-cli -p "$redis_port" --raw GET "$event" 2>/dev/null || true)
        value=${value:-0}
        counts+=("$event=$value")
        total=$((total + value))
    done
    epoch=$(redis-cli -p "$redis_port" --raw GET eddy:redis_sink:epoch 2>/dev/null || true)
    line="  ${counts[*]}  total=$total  epoch=${epoch:-0}"
    if [ -t 1 ]; then printf '\r%s   ' "$line"; else echo "$line"; fi
    if [ -n "$seconds" ] && ((SECONDS - started >= seconds)); then exit 0; fi
    sleep 1
done
echo
echo "ops/run.sh: eddy run exited; its log:" >&2
tail -20 "$work/run.log" >&2
exit 1
