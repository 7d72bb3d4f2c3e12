#!/usr/bin/env bash
# Resident memory of an EMIT ON WINDOW CLOSE pipeline over a long run (issue 9): EVENTS generated events
# (default 10,000,000) produced live at RATE a second (default 50,000) with wall-clock event times, counted per
# user and event in 10-second windows behind a 2-second watermark, closed windows written to Redis with a TTL.
# Every 10 s it prints the messages consumed and the daemon's resident memory (anonymous: the heap; file: LMDB's
# mapped pages), and at the end the keys alive in Redis.
#
#   [USERS=1000] Benchmarks/eowc-rss.sh [EDDY_BINARY] [EVENTS] [RATE]      (a release build: swift build -c release)
set -euo pipefail
eddy=$(realpath "${1:-.build/release/eddy}")
events=${2:-10000000}
rate=${3:-50000}
users=${USERS:-1000}  # distinct users (eddy produce --users): the open groups per window are about 5 × this
partitions=8

work=$(mktemp -d)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

"$eddy" dev-broker --topic "eowc:$partitions" --exit-with-parent $$ > "$work/broker.out" &
# Polls with a deadline: each waits for a condition, at most 10 s (20 s for the daemon).
wait_for() {
    local tries=$1; shift
    for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
    echo "eowc-rss: gave up waiting for: $*" >&2
    exit 2
}
wait_for 100 grep -q '^bootstrap=' "$work/broker.out"
brokers=$(sed -n 's/^bootstrap=//p' "$work/broker.out")
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no > "$work/redis.log" &
http_port=$(free_port)

cat > "$work/eowc.sql" <<SQL
CREATE SOURCE user_events (event_timestamp TIMESTAMP, user VARCHAR, page VARCHAR, event VARCHAR,
    WATERMARK FOR event_timestamp AS event_timestamp - INTERVAL '2 SECONDS')
  WITH (connector='kafka', topic='eowc', properties.bootstrap.server='$brokers', scan.startup.mode='earliest')
  FORMAT PLAIN ENCODE JSON;
CREATE MATERIALIZED VIEW per_window AS
  SELECT event, user, window_start, COUNT(*) AS n
  FROM TUMBLE(user_events, event_timestamp, INTERVAL '10 SECONDS') GROUP BY event, user, window_start
  EMIT ON WINDOW CLOSE;
CREATE SINK per_window_sink FROM per_window
  WITH (connector='redis', primary_key='event,user,window_start', redis.url='redis://127.0.0.1:$redis_port', redis.ttl_seconds='60')
  FORMAT PLAIN ENCODE TEMPLATE (key_format='{event}:{user}:{window_start}', value_format='{n}');
SQL

"$eddy" run "$work/eowc.sql" --state-dir "$work/state" --http "127.0.0.1:$http_port" --log-level warning > "$work/eddy.log" 2>&1 &
daemon=$!
wait_for 200 curl -sf -o /dev/null "http://127.0.0.1:$http_port/readyz"
"$eddy" produce --brokers "$brokers" --topic eowc --count "$events" --rate "$rate" --users "$users" --seed 9 --exit-with-parent $$ > "$work/produce.log" 2>&1 &
producer=$!

memory() { awk '/^RssAnon/ {anon = $2} /^RssFile/ {file = $2} END {printf "%d %d", anon, file}' "/proc/$daemon/status"; }
metric() { curl -sf "http://127.0.0.1:$http_port/metrics" | awk -v name="$1" '$1 == name {print int($2)}'; }
consumed() { metric eddy_messages_consumed_total; }
epoch() { metric eddy_checkpoint_epoch; }

echo "# seconds consumed rss_anon_kB rss_file_kB epoch  ($events events at $rate/s, $partitions partitions, 10 s windows)"
start=$(date +%s)
while true; do
    sleep 10
    read -r anon file <<< "$(memory)"
    total=$(consumed || echo 0)
    echo "$(( $(date +%s) - start )) ${total:-0} $anon $file $(epoch || echo 0)"
    if ! kill -0 "$producer" 2>/dev/null && [ "${total:-0}" -ge "$events" ]; then break; fi
    kill -0 "$daemon" 2>/dev/null || { echo "the daemon stopped:"; tail -5 "$work/eddy.log"; exit 1; }
done
echo "# windows written to Redis (keys alive, TTL 60 s): $(redis-cli -p "$redis_port" dbsize)"
