#!/usr/bin/env bash
# Run a sluice cluster on loopback for local work: one sluiced per node, each
# with its own INI config, data dir, log and pid file under one directory.
#
#   deploy/cluster.sh start          start every node that is not running (idempotent)
#   deploy/cluster.sh stop           SIGTERM every node and wait (SIGKILL after 15 s)
#   deploy/cluster.sh status [ARGS]  `sluice cluster status` against every node (e.g. --json)
#   deploy/cluster.sh kill NODE      kill -9 that node's master and all its children
#   deploy/cluster.sh restart NODE   stop NODE if it runs, start it again on the same data dir
#   deploy/cluster.sh servers        print the client address list (for sluice -s)
#   deploy/cluster.sh reload NODE    SIGHUP: the node reloads its TLS certificate (open connections stay)
#
# TLS: when $SLUICE_CLUSTER_DIR/tls holds ca.pem and nodeN.pem/nodeN.key (deploy/quickstart.sh
# makes them) and there is no $SLUICE_CLUSTER_DIR/plain, every node's client listeners speak TLS
# and this script's own sluice calls trust tls/ca.pem; the peer links speak mutual TLS with the
# same certificates, which name their node (deploy/certs.sh).
# Auth: when $SLUICE_CLUSTER_DIR/auth holds admin.pub and seal.key (deploy/quickstart.sh makes
# them) and there is no plain file, every node runs with [auth] enabled, admin_key the key of
# auth/admin.key, and key_file auth/seal.key; this script's own sluice calls use auth/admin.key.
#
# Environment:
#   SLUICE_CLUSTER_DIR   where configs, data, logs and pids live (default /tmp/sluice-quickstart)
#   SLUICE_BIN_DIR       where sluiced and sluice are (default: <repo>/build)
#   SLUICE_NODES         number of nodes (default 3)
#   SLUICE_CLIENT_PORT   client port of node 0 (default 7400: nodes listen on 7401, 7402, 7403)
#   SLUICE_PEER_PORT     peer port of node 0 (default 7500: peers on 7501, 7502, 7503)
#   SLUICE_HTTP_PORT     HTTP port of node 0 (default 8400: HTTP and SSE on 8401, 8402, 8403)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${SLUICE_CLUSTER_DIR:-/tmp/sluice-quickstart}
bin=${SLUICE_BIN_DIR:-$here/build}
nodes=${SLUICE_NODES:-3}
cbase=${SLUICE_CLIENT_PORT:-7400}
pbase=${SLUICE_PEER_PORT:-7500}
hbase=${SLUICE_HTTP_PORT:-8400}
stop_wait_s=15
ready_wait_s=15

die() { echo "cluster.sh: $*" >&2; exit 1; }
tls_on() { [ -f "$dir/tls/ca.pem" ] && [ ! -f "$dir/plain" ]; }
auth_on() { [ -f "$dir/auth/admin.pub" ] && [ ! -f "$dir/plain" ]; }
# sluice, trusting the cluster's CA when it runs with TLS, as the admin when auth is on
sluice_cli() {
    local a=()
    tls_on && a+=(--tls-ca "$dir/tls/ca.pem")
    auth_on && a+=(--key "$dir/auth/admin.key")
    "$bin/sluice" "${a[@]}" "$@"
}

list() { # list "prefix" base -> "1=127.0.0.1:base+1,2=..."
    local out="" i
    for i in $(seq 1 "$nodes"); do out+="${out:+,}$i=127.0.0.1:$(($2 + i))"; done
    echo "$out"
}
servers() {
    local out="" i
    for i in $(seq 1 "$nodes"); do out+="${out:+,}127.0.0.1:$((cbase + i))"; done
    echo "$out"
}
node_ok() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$nodes" ] || die "no node '$1' (1..$nodes)"; }
pidfile() { echo "$dir/node$1.pid"; }

# The master pid of node N if it runs (a pid file whose process is a sluiced), else nothing.
node_pid() {
    local f pid
    f=$(pidfile "$1")
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q sluiced "/proc/$pid/cmdline" 2>/dev/null; then
        echo "$pid"
    fi
}

write_config() {
    local n=$1
    cat >"$dir/node$n.ini" <<INI
; node $n of a local sluice cluster (written by deploy/cluster.sh)
[node]
id = $n
data_dir = $dir/node$n/data
; a few frontends are plenty on loopback
frontends = 2

[listen]
native = 127.0.0.1:$((cbase + n))
http = 127.0.0.1:$((hbase + n))

[cluster]
peers = $(list peers "$pbase")
clients = $(list clients "$cbase")
election_timeout_ms = 1000
heartbeat_ms = 100

[log]
level = info
INI
    if tls_on; then
        cat >>"$dir/node$n.ini" <<INI

[tls]
cert = $dir/tls/node$n.pem
key = $dir/tls/node$n.key
ca = $dir/tls/ca.pem
INI
    fi
    if auth_on; then
        cat >>"$dir/node$n.ini" <<INI

[auth]
enabled = true
admin_key = $(cat "$dir/auth/admin.pub")
key_file = $dir/auth/seal.key
INI
    fi
}

wait_ready() { # node: until it answers node status, bounded
    local n=$1 i
    for i in $(seq $((ready_wait_s * 10))); do
        sluice_cli -s "127.0.0.1:$((cbase + n))" node status >/dev/null 2>&1 && return 0
        [ -n "$(node_pid "$n")" ] || break
        sleep 0.1
    done
    echo "node $n did not come up; the end of $dir/node$n.log:" >&2
    tail -20 "$dir/node$n.log" >&2 || true
    return 1
}

start_node() {
    local n=$1 pid
    pid=$(node_pid "$n")
    if [ -n "$pid" ]; then
        echo "node $n already running (pid $pid)"
        return 0
    fi
    mkdir -p "$dir/node$n/data"
    write_config "$n"
    # its own session: kill NODE reaches the master and every child through the group
    setsid nohup "$bin/sluiced" --config "$dir/node$n.ini" >>"$dir/node$n.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$n")"
    echo "node $n started (pid $!): client 127.0.0.1:$((cbase + n)), http 127.0.0.1:$((hbase + n)), peer 127.0.0.1:$((pbase + n)), log $dir/node$n.log"
}

stop_node() {
    local n=$1 pid i
    pid=$(node_pid "$n")
    if [ -z "$pid" ]; then
        rm -f "$(pidfile "$n")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq $((stop_wait_s * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "node $n did not stop in ${stop_wait_s}s; killing it" >&2
        kill_node "$n"
    else
        echo "node $n stopped"
    fi
    rm -f "$(pidfile "$n")"
}

kill_node() {
    local n=$1 pid kids
    pid=$(node_pid "$n")
    [ -n "$pid" ] || { echo "node $n is not running"; return 0; }
    kids=$(pgrep -P "$pid" || true)
    kill -KILL "$pid" $kids 2>/dev/null || true
    # anything left in the node's process group (it was started with setsid)
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "node $n killed (kill -9 of pid $pid${kids:+ and children $(echo $kids)})"
}

cmd=${1:-}
case "$cmd" in
start)
    [ -x "$bin/sluiced" ] && [ -x "$bin/sluice" ] || die "no sluiced/sluice in $bin (build first, or run deploy/quickstart.sh)"
    mkdir -p "$dir"
    for n in $(seq 1 "$nodes"); do start_node "$n"; done
    for n in $(seq 1 "$nodes"); do wait_ready "$n"; done
    ;;
stop)
    for n in $(seq 1 "$nodes"); do stop_node "$n"; done
    ;;
status)
    shift
    sluice_cli -s "$(servers)" cluster status "$@"
    ;;
kill)
    node_ok "${2:-}"
    kill_node "$2"
    ;;
restart)
    node_ok "${2:-}"
    stop_node "$2"
    start_node "$2"
    wait_ready "$2"
    ;;
servers)
    servers
    ;;
reload)
    node_ok "${2:-}"
    pid=$(node_pid "$2")
    [ -n "$pid" ] || die "node $2 is not running"
    kill -HUP "$pid"
    echo "node $2: SIGHUP sent; its log says whether the certificate was reloaded"
    ;;
*)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = --help ] || exit 64
    ;;
esac
