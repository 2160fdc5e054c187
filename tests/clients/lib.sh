# lib.sh: the start the client test scripts share. Source it with the test's
# name, after `set -euo pipefail`:
#   . "$(dirname "$0")/lib.sh" NAME
# It makes $dir (a fresh directory under /tmp, removed at exit), $pids (the
# processes the script starts: each is killed and waited for at exit),
# fail MESSAGE (says it, shows the end of $dir/log, exits 1) and
# free_ports N (N free loopback ports, on one line).
dir=$(mktemp -d "/tmp/sluice-$1-XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$dir/log" >&2 || true; exit 1; }
free_ports() {
    python3 -c 'import socket,sys; s=[socket.socket() for _ in range(int(sys.argv[1]))]; [x.bind(("127.0.0.1",0)) for x in s]; print(*[x.getsockname()[1] for x in s])' "$1"
}
