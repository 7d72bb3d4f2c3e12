#!/usr/bin/env bash
# The main job (README): installs what is missing, builds eddy, and runs the example pipeline on embedded
# defaults — `eddy dev-broker` (Kafka protocol, in memory), a `redis-server` on a free loopback port, the load
# generator, and `eddy run examples/seed_pipeline.sql` — printing the live counts from Redis until Ctrl-C.
#
#   EDDY_DEMO_RATE      events per second from the load generator (default 200; the original sends one every 3 s)
#   EDDY_DEMO_SECONDS   stop by itself after this many seconds (default: run until Ctrl-C)
#   EDDY_DEMO_HTTP_PORT first port to try for the dashboard (default 9187)
#   EDDY_DEMO_DIR       logs and state (default .eddy/demo); the demo's own files there are replaced
#   EDDY_BIN            an eddy binary to run: then nothing is installed nor built (tests use this)
#
# Cleaning up: Ctrl-C, SIGTERM, SIGHUP (a closed terminal) and a closed stdout (`| tee log` or `| head`
# ended) all stop the children in order (see cleanup); if the script itself is killed outright, its
# watchdog (ops/demo-children.sh) stops them, and `eddy dev-broker` and `eddy produce` stop by themselves
# (--exit-with-parent).
set -euo pipefail
set +m  # no job control: see start() below
# Signals blocked by whoever started the script (seen: a Swift program spawning it from a Dispatch thread,
# which blocks nearly all) would reach neither its traps nor redis-server, and bash does not unblock them:
# start again with them unblocked (env resets them to their default handling and unblocks them). The mask is
# read by bash itself: inside a command substitution bash briefly blocks SIGINT, so `$(sed … /proc/$$/status)`
# would see it blocked at random and start again forever. Once is enough in any case (EDDY_DEMO_RESTARTED).
blocked=0
while read -r field value; do [ "$field" = SigBlk: ] && blocked=$value; done < /proc/$$/status
if [ -z "${EDDY_DEMO_RESTARTED:-}" ] && (( 16#$blocked & (1 << 0 | 1 << 1 | 1 << 12 | 1 << 14) )); then
    EDDY_DEMO_RESTARTED=1 exec env --default-signal=HUP,INT,PIPE,TERM bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
source ops/demo-children.sh

if [ -n "${EDDY_BIN:-}" ]; then
    eddy=$EDDY_BIN
    [ -x "$eddy" ] || { echo "ops/run.sh: EDDY_BIN=$eddy is not an executable" >&2; exit 1; }
else
    source ops/install-deps.sh run
    echo "ops/run.sh: building eddy (release)…" >&2
    swift build -c release --product eddy >&2
    eddy=$(swift build -c release --show-bin-path)/eddy
fi

rate=${EDDY_DEMO_RATE:-200}
seconds=${EDDY_DEMO_SECONDS:-}
work=${EDDY_DEMO_DIR:-.eddy/demo}
mkdir -p "$work"
work=$(cd "$work" && pwd)
# Only the demo's own files: EDDY_DEMO_DIR may name a directory that holds other things.
rm -rf "$work/state" "$work"/{dev-broker,redis,produce,run,watchdog}.{out,log} "$work/pids"
pid_file=$work/pids
shown_work=${work#"$PWD"/}  # as the user would type it
: >"$pid_file"

# The first port from $1 on which nothing listens on 127.0.0.1.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

pids=()
names=()
graces=()
run_pid=
run_status=
interrupts=0

# The pid file the watchdog reads: the children not yet stopped and reaped, in start order.
write_pid_file() {
    local count=$1 i
    for ((i = 0; i < count; i++)); do echo "${pids[i]} ${graces[i]} ${names[i]}"; done >"$pid_file.new"
    mv -f "$pid_file.new" "$pid_file"
}

# `start NAME GRACE COMMAND...` starts COMMAND in the background in a session of its own and records its pid
# (GRACE: seconds it gets to exit after SIGTERM before SIGKILL). Why a session of its own: without job
# control every child shares the terminal's process group, so Ctrl-C would reach them all at once
# (redis-server dies before eddy run's final flush, and the cleanup's SIGTERM becomes eddy run's second
# signal, "exit at once"). In a session of its own only this script gets Ctrl-C (or the SIGHUP of a closed
# terminal) and stops the children one at a time. Without job control (`set +m`, a script's default) the
# forked child is no process-group leader, so setsid(1) calls setsid(2) and execs in place: $! is the
# program's own pid, for kill and wait, and the program's parent is this script (--exit-with-parent $$).
start() {
    local name=$1 grace=$2
    shift 2
    starting=("$name" "$grace")
    setsid "$@" </dev/null &
    record_child "$!" "$name" "$grace"
    starting=()
}
starting=()

record_child() {
    pids+=("$1")
    names+=("$2")
    graces+=("$3")
    write_pid_file "${#pids[@]}"
}

# Ctrl-C (or SIGTERM) while stopping: a second one stops every child now (eddy run exits at once and
# keeps its last checkpoint); a third kills whatever is left.
hurry() {
    interrupts=$((interrupts + 1))
    local signal=TERM
    if ((interrupts == 1)); then
        demo_say "ops/run.sh: interrupted again: stopping everything now (eddy run keeps its last checkpoint)"
    else
        demo_say "ops/run.sh: interrupted again: killing what is left"
        signal=KILL
    fi
    for pid in "${pids[@]}"; do kill -"$signal" "$pid" 2>/dev/null || true; done
}

# Runs on every way out but SIGKILL (the watchdog's case). It must get to the end whatever happens to the
# script's output: after SIGHUP the terminal is gone and after `| tee` the pipe may be, so writes fail (and
# would end the script under `set -e`, or kill it with SIGPIPE): no errexit, SIGPIPE ignored, demo_say.
cleanup() {
    trap - EXIT
    set +e
    trap '' PIPE
    # A closed terminal sends SIGHUP twice (the kernel, then the login shell to its jobs): not a hurry.
    trap '' HUP
    trap hurry INT TERM
    # Traps run between commands: one that came between a child's start and its recording finds it in $!.
    if ((${#starting[@]} > 0)) && [ "${pids[*]: -1}" != "$!" ]; then record_child "$!" "${starting[@]}"; fi
    demo_say ""
    if [ -n "$run_pid" ]; then
        demo_say "ops/run.sh: stopping (eddy run takes a final checkpoint)…"
    elif ((${#pids[@]} > 0)); then
        demo_say "ops/run.sh: stopping…"
    fi
    # The daemon first, so that its final checkpoint and sink flush still find Kafka and Redis; then the
    # load generator, the broker and Redis, each gone before the next is asked.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        demo_stop "${pids[i]}" "${names[i]}" "${graces[i]}"
        local waited_status=0
        wait "${pids[i]}" 2>/dev/null || waited_status=$?
        if [ "${pids[i]}" = "$run_pid" ]; then run_status=$waited_status; fi
        write_pid_file "$i"
    done
    if [ -n "$run_status" ] && [ "$run_status" -ne 0 ]; then
        demo_say "ops/run.sh: eddy run exited with status $run_status; see $shown_work/run.log"
    fi
    demo_say "ops/run.sh: stopped; logs and state are in $shown_work/"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP
# A reader that went away (`| tee log` ended by Ctrl-C, `| head`): the next live-counts line raises SIGPIPE
# here; if SIGPIPE was ignored when the script started (then it cannot be trapped), that write fails with
# EPIPE instead, which the printing loop checks. Either way: the same cleanup.
trap 'exit 0' PIPE

# The watchdog, before any child: it stops them if this script is killed outright (see demo_watch).
setsid bash -c 'source ops/demo-children.sh && demo_watch "$@"' watchdog "$$" "$pid_file" \
    </dev/null >/dev/null 2>"$work/watchdog.log" &

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

# Redis, on a free loopback port, in the demo's folder. PONG from the port while our redis-server still
# runs: another server taking the port meanwhile would answer too, but then ours exits.
redis_port=$(free_port 6390)
start redis-server 5 redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
    --logfile "$work/redis.log" >"$work/redis.out" 2>&1
redis_pid=${pids[-1]}
redis_answers() { [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ]; }
poll_while_alive "$redis_pid" redis_answers && kill -0 "$redis_pid" 2>/dev/null ||
    fail "redis-server did not answer PING on 127.0.0.1:$redis_port" "$work/redis.log"

# Kafka: eddy's own dev broker. Its first line is bootstrap=HOST:PORT.
start "eddy dev-broker" 5 "$eddy" dev-broker --topic test:8 --exit-with-parent $$ \
    >"$work/dev-broker.out" 2>"$work/dev-broker.log"
broker_pid=${pids[-1]}
poll_while_alive "$broker_pid" grep -q '^bootstrap=.' "$work/dev-broker.out" ||
    fail "eddy dev-broker did not print its address" "$work/dev-broker.log"
brokers=$(sed -n 's/^bootstrap=//p' "$work/dev-broker.out")

# The load generator, as the original pipeline's users run it (faster, so the counts move). It stops within
# about a second of SIGTERM, giving up what the broker has not acknowledged by then.
start "eddy produce" 5 "$eddy" produce --brokers "$brokers" --topic test --rate "$rate" --exit-with-parent $$ \
    >/dev/null 2>"$work/produce.log"

# The pipeline, exactly as written, with hosts from the environment. SIGTERM: final checkpoint and sink
# flush, bounded by the daemon itself; 15 s is a generous margin before SIGKILL (the state stays safe).
http_port=$(free_port "${EDDY_DEMO_HTTP_PORT:-9187}")
pg_port=$(free_port "${EDDY_DEMO_PG_PORT:-4566}")
KAFKA_BROKERS=$brokers REDIS_URL=redis://127.0.0.1:$redis_port \
    start "eddy run" 15 "$eddy" run examples/seed_pipeline.sql --state-dir "$work/state" --http "127.0.0.1:$http_port" \
    --pg "127.0.0.1:$pg_port" >"$work/run.out" 2>"$work/run.log"
run_pid=${pids[-1]}

cat >&2 <<INFO
ops/run.sh: running the example pipeline
  Kafka (eddy dev-broker) $brokers, topic 'test' (8 partitions), $rate events/s from eddy produce
  Redis                   redis://127.0.0.1:$redis_port   (try: redis-cli -p $redis_port GET click)
  Dashboard               http://127.0.0.1:$http_port/   (metrics: /metrics)
  PostgreSQL              psql -h 127.0.0.1 -p $pg_port -c 'SELECT * FROM events_statisics_mv'
  Logs and state          $shown_work/
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
    # The marker reads `v1 <epoch> <form> <topic>/<partition>=<offset> …`: the epoch is its second field.
    marker=$(redis-cli -p "$redis_port" --raw GET eddy:redis_sink:epoch 2>/dev/null || true)
    epoch=$(echo "$marker" | awk '{ print $2 }')
    line="  ${counts[*]}  total=$total  epoch=${epoch:-0}"
    if [ -t 1 ]; then format='\r%s   '; else format='%s\n'; fi
    # A failed write (EPIPE: the reader is gone) stops the demo like Ctrl-C.
    printf "$format" "$line" 2>/dev/null || exit 0
    if [ -n "$seconds" ] && ((SECONDS - started >= seconds)); then exit 0; fi
    sleep 1
done
demo_say ""
fail "eddy run exited" "$work/run.log"
