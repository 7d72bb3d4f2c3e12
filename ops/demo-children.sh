# Stopping the demo's children (ops/run.sh), shared by the script's own cleanup and by its watchdog. Sourced.
#
# The pid file lists the children the script started, one "PID GRACE NAME" line each, in start order; they are
# stopped in the reverse order (eddy run first, so that its final checkpoint and sink flush still find Kafka
# and Redis), each with SIGTERM, up to GRACE seconds to exit, then SIGKILL.

# Whether process $1 runs: exists and is not a zombie (kill -0 succeeds on a zombie not yet reaped).
demo_running() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [ "${stat:0:1}" != Z ]
}

# One line on stderr, ignoring a closed terminal or pipe (after SIGHUP or with `| tee`, writes fail).
demo_say() {
    printf '%s\n' "$*" >&2 2>/dev/null || true
}

# SIGTERM to $1 (named $2), up to $3 seconds to exit, then SIGKILL and up to 2 s more. Does not reap.
demo_stop() {
    local pid=$1 name=$2 grace=$3 tenths
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((tenths = 0; tenths < grace * 10; tenths++)); do
        demo_running "$pid" || return 0
        sleep 0.1
    done
    demo_say "ops/run.sh: $name (pid $pid) still runs ${grace} s after SIGTERM: killing it"
    kill -KILL "$pid" 2>/dev/null || return 0
    for ((tenths = 0; tenths < 20; tenths++)); do
        demo_running "$pid" || return 0
        sleep 0.1
    done
}

# The watchdog: `demo_watch SCRIPT_PID PID_FILE`, started by the script as its own child, in a session of its
# own. Why it exists: a script killed outright (SIGKILL, or a crash) runs no cleanup, and redis-server and
# `eddy run` have no --exit-with-parent (`eddy dev-broker` and `eddy produce` also stop by themselves). It
# polls its parent pid five times a second (the kernel reparents it the moment the script exits, zombie or
# not), reading the pid file each time (kept in memory, so a demo directory deleted meanwhile changes
# nothing); then it stops what the file last listed. The script removes each child it has reaped itself, so
# after a normal cleanup the list is empty and no reused pid is ever signalled. Terminal signals (Ctrl-C, a
# closed terminal) are the script's to handle: the watchdog ignores them.
demo_watch() {
    local script=$1 pid_file=$2 stat lines=() latest=() i pid grace name
    trap '' INT HUP TERM PIPE
    while :; do
        # The file is replaced whole (mv), so a read sees one version; a failed read keeps the last one.
        if { mapfile -t latest <"$pid_file"; } 2>/dev/null; then lines=("${latest[@]}"); fi
        { read -r stat <"/proc/$BASHPID/stat"; } 2>/dev/null || break
        stat=${stat##*) }        # "S PPID ..."
        stat=${stat#* }
        [ "${stat%% *}" = "$script" ] || break
        sleep 0.2
    done
    # Once more: the script may have started a child between the last read and its exit.
    if { mapfile -t latest <"$pid_file"; } 2>/dev/null; then lines=("${latest[@]}"); fi
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r pid grace name <<<"${lines[i]}"
        if demo_running "$pid"; then
            demo_say "ops/run.sh watchdog: the script (pid $script) is gone; stopping $name (pid $pid)"
            demo_stop "$pid" "$name" "$grace"
        fi
    done
}
