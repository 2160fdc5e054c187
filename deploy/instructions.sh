#!/usr/bin/env bash
# Count the CPU instructions the broker spends per published message, with
# valgrind's callgrind (instructions executed, "Ir"). Unlike msg/s this does
# not move with the load on the machine, so it is the figure to set beside
# every throughput figure in docs/benchmarks.md.
#
#   deploy/instructions.sh [--json] [--counts N1,N2] [--repeat R] [BENCH_ARGS...]
#     --json          print one JSON object instead of the table
#     --counts N1,N2  messages in the short and the long run (default 50000,150000)
#     --repeat R      pairs of runs; the pair with the median total is shown (default 3)
#     BENCH_ARGS      passed to `sluice bench pub` after the defaults
#                     (--size 100 --producers 1 --window 1000), e.g. --linger-ms 0
#                     for one PublishRequest per message (the client batches by default)
#
# Method: a fresh one-node sluiced with one frontend runs under
# `valgrind --tool=callgrind --trace-children=yes`, which writes one file per
# process (master, logwriter, frontend: told apart by the names they give
# themselves with prctl, read from /proc while they run); the bench client
# runs natively and publishes N messages; SIGTERM stops the node so that
# callgrind writes its files. This is done for N1 and for N2 on two fresh
# nodes, and (I(N2) - I(N1)) / (N2 - N1) is reported, total and per process:
# the subtraction cancels start-up, topic creation and shutdown. Calls to
# fdatasync are counted from the same files.
#
# Caveats:
#   - Under callgrind the broker runs ~20x slower while the client does not,
#     so the node sees deeper queues and bigger batches than it would
#     natively: the figure is for a saturated node.
#   - The frontend's share repeats to within 0.5 %; the logwriter's moves by
#     a few % with how many messages share one commit and fdatasync, which
#     timing decides. Hence the median of R pairs, the spread of the totals
#     and the messages per fdatasync in the output.
#   - One node only; a three-node cluster (replication, raft) is not measured.
#   - Takes about 35 s with --linger-ms 0 and 10 s batched on a 2-core
#     machine, plus the build.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
json=0
counts=50000,150000
repeat=3
while (($#)); do
    case $1 in
    --json) json=1; shift ;;
    --counts) counts=$2; shift 2 ;;
    --counts=*) counts=${1#--counts=}; shift ;;
    --repeat) repeat=$2; shift 2 ;;
    --repeat=*) repeat=${1#--repeat=}; shift ;;
    --) shift; break ;;
    *) break ;;
    esac
done
extra=("$@")
n1=${counts%,*}
n2=${counts#*,}
if ! [[ $n1 =~ ^[0-9]+$ && $n2 =~ ^[0-9]+$ && $repeat =~ ^[1-9][0-9]*$ ]] || ((n2 <= n1)); then
    echo "instructions.sh: --counts wants N1,N2 with N1 < N2, --repeat a count" >&2
    exit 2
fi

started=$(date +%s)
bash "$here/deploy/install-deps.sh"
if ! command -v valgrind >/dev/null; then
    echo "installing: valgrind"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq valgrind >/dev/null
fi
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$here/build" -j"$(nproc)" --target sluiced sluice >/dev/null
built=$(date +%s)

work=$(mktemp -d /tmp/sluice-instr.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One measured run (N, pair number): a fresh node under callgrind, N messages, stop.
# Leaves $work/run-N-R/cg.* (callgrind files), roles (pid and process name) and bench.json.
measure() {
    local n=$1 dir=$work/run-$1-$2 port
    mkdir -p "$dir"
    port=$(freeport)
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg.%p" \
        "$here/build/sluiced" --data-dir "$dir/data" --listen "127.0.0.1:$port" --frontends 1 \
        >"$dir/sluiced.log" 2>&1 &
    pid=$!
    local up=0
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || break
        if "$here/build/sluice" --server "127.0.0.1:$port" node status >/dev/null 2>&1; then up=1; break; fi
        sleep 0.1
    done
    if [ "$up" = 0 ]; then
        echo "instructions.sh: sluiced under callgrind did not answer in 60 s; its log:" >&2
        tail -20 "$dir/sluiced.log" >&2
        exit 1
    fi
    "$here/build/sluice" --server "127.0.0.1:$port" --json bench pub \
        --size 100 --count "$n" --producers 1 --window 1000 "${extra[@]}" >"$dir/bench.json"
    # The children name themselves with prctl; read the names while they live.
    echo "$pid master" >"$dir/roles"
    for c in $(pgrep -P "$pid"); do echo "$c $(cat "/proc/$c/comm" 2>/dev/null || echo '?')"; done >>"$dir/roles"
    kill -TERM "$pid"
    wait "$pid" || { echo "instructions.sh: sluiced exited with $?; its log:" >&2; tail -20 "$dir/sluiced.log" >&2; exit 1; }
    pid=
}

for r in $(seq "$repeat"); do
    measure "$n1" "$r"
    measure "$n2" "$r"
done

python3 - "$work" "$n1" "$n2" "$repeat" "$json" "$((built - started))" "$(($(date +%s) - built))" "${extra[*]}" <<'EOF'
import glob, json, sys
work, n1, n2, repeat, as_json = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
build_s, run_s, extra = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
ROLES = ["master", "logwriter", "frontend"]
SYNCS = {"fdatasync", "fsync"}


def role_of(name):
    if name == "master":
        return "master"
    if name.startswith("sluice-logwrite"):
        return "logwriter"
    if name.startswith("sluice-fe-"):
        return "frontend"
    return None


def read_callgrind(path):
    """(pid, instructions, calls to fdatasync and fsync) of one callgrind file."""
    pid, total, syncs = None, None, 0
    names, callee = {}, None  # fn= and cfn= share one table of compressed names
    for line in open(path):
        if line.startswith(("fn=", "cfn=")):
            key, _, rest = line.rstrip("\n").partition("=")
            ident, _, name = rest.partition(" ")
            if name:
                names[ident] = name
            if key == "cfn":
                callee = names.get(ident)
        elif line.startswith("calls="):
            if callee in SYNCS:
                syncs += int(line[6:].split()[0])
        elif line.startswith("pid:"):
            pid = line.split()[1]
        elif line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])  # totals: follows summary: and wins
    if pid is None or total is None:
        sys.exit(f"instructions.sh: no pid or totals in {path}")
    return pid, total, syncs


def run(n, r):
    d = f"{work}/run-{n}-{r}"
    names = dict(line.split(None, 1) for line in open(f"{d}/roles").read().splitlines())
    per_pid, syncs = {}, 0
    for path in glob.glob(f"{d}/cg.*"):
        pid, total, s = read_callgrind(path)
        per_pid[pid] = per_pid.get(pid, 0) + total
        syncs += s
    # A process whose name we did not see (a restarted child): master first,
    # then the logwriter, then the frontends, in pid order.
    fallback = {p: ROLES[min(i, 2)] for i, p in enumerate(sorted(per_pid, key=int))}
    by_role = dict.fromkeys(ROLES, 0)
    for p, total in per_pid.items():
        by_role[role_of(names.get(p, "").strip()) or fallback[p]] += total
    by_role["total"] = sum(per_pid.values())
    bench = json.load(open(f"{d}/bench.json"))
    if bench.get("failed"):
        sys.exit(f"instructions.sh: {bench['failed']} of {n} messages failed")
    return {"instructions": by_role, "syncs": syncs, "processes": len(per_pid), "msgs_per_s": round(bench["msgs_per_s"])}


pairs = []
for r in range(1, repeat + 1):
    a, b = run(n1, r), run(n2, r)
    per_msg = {k: (b["instructions"][k] - a["instructions"][k]) / (n2 - n1) for k in ROLES + ["total"]}
    syncs = b["syncs"] - a["syncs"]
    pairs.append({"per_msg": per_msg, "msgs_per_sync": (n2 - n1) / syncs if syncs > 0 else None, "runs": [a, b]})
totals = sorted(p["per_msg"]["total"] for p in pairs)
median = sorted(pairs, key=lambda p: p["per_msg"]["total"])[(repeat - 1) // 2]
mps = median["msgs_per_sync"]
args = "--size 100 --producers 1 --window 1000" + (" " + extra if extra else "")
if as_json:
    print(json.dumps({"nodes": 1, "frontends": 1, "bench_args": args, "counts": [n1, n2], "repeat": repeat,
                      "instructions_per_msg": {k: round(v) for k, v in median["per_msg"].items()},
                      "msgs_per_sync": mps and round(mps, 1),
                      "total_per_msg_min_max": [round(totals[0]), round(totals[-1])],
                      "pairs": pairs, "build_s": build_s, "run_s": run_s}))
    sys.exit(0)
print("# instructions per published message (callgrind Ir), one node with 1 frontend")
print(f"# sluice bench pub {args}")
print(f"# (I({n2}) - I({n1})) / {n2 - n1}: the pair of fresh nodes with the median total of {repeat}")
print(f"{'process':<10} {'per msg':>10}")
for k in ROLES + ["total"]:
    print(f"{k:<10} {median['per_msg'][k]:>10.0f}")
print(f"# totals of the {repeat} pairs: " + " ".join(f"{t:.0f}" for t in totals) +
      (f"; {mps:.1f} messages per fdatasync in the median pair" if mps else ""))
rates = [r["msgs_per_s"] for p in pairs for r in p["runs"]]
print(f"# under callgrind the node ran {min(rates)}-{max(rates)} msg/s; build {build_s} s, runs {run_s} s")
EOF
