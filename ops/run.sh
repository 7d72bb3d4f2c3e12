#!/usr/bin/env bash
# The main job (README): installs what is missing, builds eddy, and runs the example pipeline on embedded
# defaults — `eddy dev-broker` (Kafka protocol, in memory), a `redis-server` on a free loopback port, the load
# generator, and `eddy run examples/seed_pipeline.sql` — printing the live counts from Redis until Ctrl-C.
#
#   EDDY_DEMO_RATE      events per second from the load generator (default 200; the original sends one every 3 s)
#   EDDY_DEMO_SECONDS   stop by itself after this many seconds (default: run until Ctrl-C)
#   EDDY_DEMO_HTTP_PORT first port to try for the dashboard (default 9187)
set -euo pipefail
set +m  # no job control: see start() below
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
run_pid=
run_status=
interrupts=0

# Starts "$@" in the background in a session of its own and records its pid. Why: without job control every
# child shares the terminal's process group, so Ctrl-C would reach them all at once (redis-server dies
# before eddy run's final flush, and the cleanup's SIGTERM becomes eddy run's second signal, "exit at
# once"). In a session of its own only this script gets Ctrl-C and stops the children one at a time.
# Without job control (`set +m`, a script's default) the forked child is no process-group leader, so
# setsid(1) calls setsid(2) and execs in place: $! is the program's own pid, for kill and wait.
start() {
    setsid "$@" </dev/null &
    pids+=("$!")
}

# Waits until process $1 is gone, through interrupts (a trapped signal cuts `wait` short); its exit status
# in $waited_status.
waited_status=
wait_for_exit() {
    local pid=$1
    while :; do
        if wait "$pid" 2>/dev/null; then waited_status=0; else waited_status=$?; fi
        # 127: not (or no longer) our child. Otherwise reaped unless `wait` was interrupted.
        if [ "$waited_status" -eq 127 ] || ! kill -0 "$pid" 2>/dev/null; then return 0; fi
    done
}

# Ctrl-C (or SIGTERM) while stopping: a second one stops every child now (eddy run exits at once and keeps
# its last checkpoint); a third kills whatever is left.
hurry() {
    interrupts=$((interrupts + 1))
    local signal=TERM
    if ((interrupts == 1)); then
        echo "ops/run.sh: interrupted again: stopping everything now (eddy run keeps its last checkpoint)" >&2
    else
        echo "ops/run.sh: interrupted again: killing what is left" >&2
        signal=KILL
    fi
    for pid in "${pids[@]}"; do kill -"$signal" "$pid" 2>/dev/null || true; done
}

cleanup() {
    trap - EXIT
    trap hurry INT TERM HUP
    echo >&2
    if [ -n "$run_pid" ]; then
        echo "ops/run.sh: stopping (eddy run takes a final checkpoint)…" >&2
    elif ((${#pids[@]} > 0)); then
        echo "ops/run.sh: stopping…" >&2
    fi
    # The daemon first, so that its final checkpoint and sink flush still find Kafka and Redis; then the
    # load generator, Redis and the broker, each gone before the next is asked.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait_for_exit "${pids[i]}"
        if [ "${pids[i]}" = "$run_pid" ]; then run_status=$waited_status; fi
    done
    if [ -n "$run_status" ] && [ "$run_status" -ne 0 ]; then
        echo "ops/run.sh: eddy run exited with status $run_status; see $work/run.log" >&2
    fi
    echo "ops/run.sh: stopped; logs and state are in $work/" >&2
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

# Exits with $1 and the last lines of log $2.
fail() {
    echo "ops/run.sh: $1; the end of $2:" >&2
    tail -n 20 "$2" 2>/dev/null | sed 's/^/  | /' >&2
    exit 1
}

# Polls "$2..." every 0.1 s for up to 10 s while process $1 lives; fails as soon as the process is gone.
poll_while_alive() {
    local pid=$1
    shift
    for _ in $(seq 100); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Kafka: eddy's own dev broker. Its first line is bootstrap=HOST:PORT.
start "$eddy" dev-broker --topic test:8 >"$work/dev-broker.out" 2>"$work/dev-broker.log"
broker_pid=${pids[-1]}
poll_while_alive "$broker_pid" grep -q '^bootstrap=.' "$work/dev-broker.out" ||
    fail "eddy dev-broker did not print its address" "$work/dev-broker.log"
brokers=$(sed -n 's/^bootstrap=//p' "$work/dev-broker.out")

# Redis, on a free loopback port, in the demo's folder. PONG from the port while our redis-server still
# runs: another server taking the port meanwhile would answer too, but then ours exits.
redis_port=$(free_port 6390)
start redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$PWD/$work" --save "" --appendonly no \
    --logfile "$PWD/$work/redis.log"
redis_pid=${pids[-1]}
redis_answers() { [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ]; }
poll_while_alive "$redis_pid" redis_answers && kill -0 "$redis_pid" 2>/dev/null ||
    fail "redis-server did not answer PING on 127.0.0.1:$redis_port" "$work/redis.log"

# The load generator, as the original pipeline's users run it (faster, so the counts move).
start "$eddy" produce --brokers "$brokers" --topic test --rate "$rate" 2>"$work/produce.log"

# The pipeline, exactly as written, with hosts from the environment.
http_port=$(free_port "${EDDY_DEMO_HTTP_PORT:-9187}")
KAFKA_BROKERS=$brokers REDIS_URL=redis://127.0.0.1:$redis_port \
    start "$eddy" run examples/seed_pipeline.sql --state-dir "$work/state" --http "127.0.0.1:$http_port" \
    >"$work/run.out" 2>"$work/run.log"
run_pid=${pids[-1]}

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
fail "eddy run exited" "$work/run.log"
