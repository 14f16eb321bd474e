#!/usr/bin/env bash
# Runs one gpj experiment as N processes on this machine, joined by jax.distributed: the
# multi-host code path (each process feeds its share of every batch, process 0 writes the
# results) without a cluster.
#
# Usage:
#   launch/local_multiprocess.sh N [--] GPJ_ARGS...
#   launch/local_multiprocess.sh --help
#
# Example, from the repository root:
#   launch/local_multiprocess.sh 2 --config=configs/probe.py:tiny --workdir=runs/two-processes
#
# Process I (0 <= I < N) runs
#   $PYTHON -m gpj.main GPJ_ARGS --coordinator_address=127.0.0.1:PORT \
#       --num_processes=N --process_id=I
# with PORT a free loopback port; the coordinator listens on 127.0.0.1 only
# (JAX_COORDINATOR_BIND_ADDRESS, unless you set it).
#
# Output: process 0's stdout and stderr pass through unchanged (results table, progress bar);
# every line of the other processes goes to stderr as "[process I] ...".
# When a process fails, the others are stopped and the script exits with its status;
# usage errors exit with 2.
#
# Devices: the processes run on the CPU (JAX_PLATFORMS=cpu unless you set JAX_PLATFORMS), where
# each sees one device, JAX's default. A device count you set yourself is kept, and the script
# says so on stderr: XLA_FLAGS=--xla_force_host_platform_device_count=K (tests/conftest.py sets 8)
# or JAX_NUM_CPU_DEVICES=K give every process K devices. For one device per process, run
#   env -u XLA_FLAGS -u JAX_NUM_CPU_DEVICES launch/local_multiprocess.sh N ...
#
# Environment: PYTHON, the interpreter that runs gpj (default: python).
set -euo pipefail

script=$(basename "$0")

print_help() {
  # The comment block above is the help text.
  awk 'NR > 1 { if ($0 == "#" || $0 ~ /^# /) { sub(/^# ?/, ""); print } else exit }' "$0"
}

fail() {
  echo "error: $1 (see $script --help)" >&2
  exit 2
}

# Prefixes every line it reads with "[process $1] " and writes it to stderr.
prefix_lines() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    printf '[process %s] %s\n' "$1" "$line"
  done >&2
}

(($# > 0)) || fail "missing N, the number of processes"
case $1 in
  -h | --help) print_help; exit 0 ;;
esac
num_processes=$1
shift
[[ $num_processes =~ ^[1-9][0-9]*$ ]] || fail "N must be a positive integer, not '$num_processes'"
if [[ ${1:-} == -- ]]; then shift; fi
(($# > 0)) ||
  fail "no arguments for gpj.main, e.g. $script $num_processes --config=configs/probe.py:tiny"
for arg in "$@"; do
  case $arg in
    --coordinator_address* | --num_processes* | --process_id* | --distributed*)
      fail "$arg: this script sets the process flags itself; drop it" ;;
  esac
done
python=${PYTHON:-python}
command -v "$python" >/dev/null || fail "PYTHON=$python is not a command"

export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
if [[ ${XLA_FLAGS:-} == *xla_force_host_platform_device_count* ||
  -n ${JAX_NUM_CPU_DEVICES:-} ]]; then
  echo "note: keeping your device count (XLA_FLAGS='${XLA_FLAGS:-}'" \
    "JAX_NUM_CPU_DEVICES='${JAX_NUM_CPU_DEVICES:-}'): every process gets those devices;" \
    "unset them for one device per process" >&2
fi

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
export JAX_COORDINATOR_BIND_ADDRESS=${JAX_COORDINATOR_BIND_ADDRESS:-127.0.0.1:$port}

pids=()  # pids[i] is process i's pid, emptied once it has been waited for

# Stops every process still running: SIGTERM, then SIGKILL after 5 s (JAX may handle SIGTERM).
stop_all() {
  local i pid
  for pid in "${pids[@]}"; do
    if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for _ in {1..50}; do
    local alive=0
    for pid in "${pids[@]}"; do
      if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    ((alive)) || break
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    pid=${pids[i]}
    [[ -n $pid ]] || continue
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pids[i]=""
  done
}
# Background processes of a script ignore Ctrl-C, so the script stops them itself.
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ((i = 0; i < num_processes; i++)); do
  command=("$python" -m gpj.main "$@" "--coordinator_address=127.0.0.1:$port"
    "--num_processes=$num_processes" "--process_id=$i")
  if ((i == 0)); then
    "${command[@]}" &
  else
    "${command[@]}" > >(prefix_lines "$i") 2>&1 &
  fi
  pids+=("$!")
done

# Polls rather than `wait -n`, so that it knows which process ended (bash >= 4 suffices).
remaining=$num_processes
while ((remaining > 0)); do
  for i in "${!pids[@]}"; do
    pid=${pids[i]}
    if [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null; then continue; fi
    status=0
    wait "$pid" || status=$?
    pids[i]=""
    remaining=$((remaining - 1))
    if ((status != 0)); then
      echo "error: process $i exited with status $status; stopping the other processes" >&2
      exit "$status"
    fi
  done
  ((remaining == 0)) || sleep 0.2
done
