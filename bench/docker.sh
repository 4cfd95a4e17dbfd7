#!/usr/bin/env bash
# lode-server in Docker against the same statically linked binary run natively, in one run:
#   - the image's size;
#   - from `docker run` to /readyz answering 200;
#   - 4 KiB uploads at 64 clients and one 1 GiB upload (server_load), natively and through the
#     container's published port, alternating, median of --runs;
#   - a container limited to 128 MiB taking 64 parallel 1 MiB uploads and one 1 GiB upload.
#
#     bench/docker.sh [--runs 3] [--small 20000] [--large-mib 1024]
#
# Data folders are on disk (the native one under $BENCH_TMP, default /var/tmp; the container's in
# a Docker volume) and keep every run's objects: a full run needs about 2 x runs x (small x 4 KiB
# + large) of free space. Everything the run creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
small=20000
large_mib=1024
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --small) small="$2"; shift 2 ;;
    --large-mib) large_mib="$2"; shift 2 ;;
    *) echo "usage: bench/docker.sh [--runs N] [--small N] [--large-mib N]" >&2; exit 2 ;;
  esac
done

tag=lode-server:bench
id="lode-bench-$$"
work="$(mktemp -d -p "${BENCH_TMP:-/var/tmp}" lode-docker-bench.XXXXXX)"
native_pid=""
cleanup() {
  [ -n "$native_pid" ] && kill "$native_pid" 2>/dev/null && wait "$native_pid" 2>/dev/null
  docker rm -f "$id-start" "$id-load" "$id-mem" >/dev/null 2>&1 || true
  docker volume rm -f "$id-start" "$id-load" "$id-mem" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

docker/build.sh --tag "$tag"
triple="$(rustc -vV | sed -n 's/^host: //p')"
binary="target/$triple/release/lode-server"
# The load generator is built like the server (same target and flags), so it reuses its
# dependencies instead of compiling them again for the host.
flags_var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
export "$flags_var=-C target-feature=+crt-static"
cargo bench -p lode-server --target "$triple" --bench server_load --no-run

median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# Polls /readyz on 127.0.0.1:$1 until it answers 200.
wait_ready() {
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; do
    sleep 0.005
  done
}

published_port() { docker port "$1" 8080/tcp | sed -n 's/^127\.0\.0\.1://p' | head -n 1; }

# Starts a container: NAME, then extra `docker run` options.
start_container() {
  local name="$1"; shift
  docker volume create "$name" >/dev/null
  docker run -d --name "$name" -p 127.0.0.1::8080 -v "$name:/data" -e LODE_LOG=warn "$@" "$tag" >/dev/null
}

# Creates the project `bench` in a container and prints a write token for it.
container_token() {
  docker exec "$1" lode-server admin project create bench >/dev/null
  docker exec "$1" lode-server admin token create --project bench --role write 2>/dev/null | tail -n 1
}

# server_load against a running server: URL TOKEN PID SEED, then extra options.
load() {
  local url="$1" token="$2" pid="$3" seed="$4"; shift 4
  cargo bench -q -p lode-server --target "$triple" --bench server_load -- --url "$url" --token "$token" \
    --pid "$pid" --seed "$seed" --checks 0 "$@" 2>"$work/load.err" || { cat "$work/load.err" >&2; return 1; }
}

size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "image $tag: $(python3 -c "print(f'{$size/1e6:.1f} MB')")"

starts=()
for r in $(seq "$runs"); do
  docker volume create "$id-start" >/dev/null
  t0=$(date +%s.%N)
  docker run -d --name "$id-start" -p 127.0.0.1::8080 -v "$id-start:/data" "$tag" >/dev/null
  wait_ready "$(published_port "$id-start")"
  t1=$(date +%s.%N)
  starts+=("$(python3 -c "print($t1 - $t0)")")
  docker rm -f "$id-start" >/dev/null
  docker volume rm "$id-start" >/dev/null
done
echo "docker run to /readyz 200: median $(median "${starts[@]}") s (runs: ${starts[*]})"

# The same binary natively, and in a container, each on its own data folder.
mkdir -p "$work/native"
LODE_DATA_DIR="$work/native" "$binary" admin project create bench >/dev/null
native_token=$(LODE_DATA_DIR="$work/native" "$binary" admin token create --project bench --role write 2>/dev/null | tail -n 1)
LODE_DATA_DIR="$work/native" LODE_LOG=warn "$binary" serve --listen 127.0.0.1:0 >"$work/native.out" 2>"$work/native.err" &
native_pid=$!
until grep -q "listening on" "$work/native.out"; do sleep 0.01; done
native_url=$(sed -n 's/^lode-server listening on //p' "$work/native.out")
start_container "$id-load"
docker_port=$(published_port "$id-load")
wait_ready "$docker_port"
docker_url="http://127.0.0.1:$docker_port"
docker_token=$(container_token "$id-load")
docker_pid=$(docker inspect -f '{{.State.Pid}}' "$id-load")

declare -A small_rate large_rate
seed=1
for r in $(seq "$runs"); do
  for where in native docker; do
    if [ "$where" = native ]; then
      out=$(load "$native_url" "$native_token" "$native_pid" "$seed" --small "$small" --large-mib "$large_mib")
    else
      out=$(load "$docker_url" "$docker_token" "$docker_pid" "$seed" --small "$small" --large-mib "$large_mib")
    fi
    seed=$((seed + 1))
    s=$(echo "$out" | sed -n 's/^small uploads: .* = \([0-9]*\) uploads\/s.*/\1/p')
    l=$(echo "$out" | sed -n 's/^large upload: .* = \([0-9]*\) MB\/s.*/\1/p')
    small_rate[$where]="${small_rate[$where]:-} $s"
    large_rate[$where]="${large_rate[$where]:-} $l"
    echo "run $r $where: 4 KiB uploads $s/s, $large_mib MiB upload $l MB/s"
  done
done
for where in native docker; do
  # shellcheck disable=SC2086
  echo "$where: 4 KiB uploads median $(median ${small_rate[$where]})/s, $large_mib MiB upload median $(median ${large_rate[$where]}) MB/s"
done
# shellcheck disable=SC2086
python3 -c "
import statistics as s, sys
n, d = [float(x) for x in '''${small_rate[native]}'''.split()], [float(x) for x in '''${small_rate[docker]}'''.split()]
nl, dl = [float(x) for x in '''${large_rate[native]}'''.split()], [float(x) for x in '''${large_rate[docker]}'''.split()]
print(f'docker / native: 4 KiB uploads {s.median(d) / s.median(n):.0%}, large upload {s.median(dl) / s.median(nl):.0%}')
"
kill "$native_pid"; wait "$native_pid" 2>/dev/null || true; native_pid=""
docker rm -f "$id-load" >/dev/null

# 128 MiB: 64 parallel 1 MiB uploads, then one 1 GiB upload.
start_container "$id-mem" --memory 128m --memory-swap 128m
mem_port=$(published_port "$id-mem")
wait_ready "$mem_port"
mem_token=$(container_token "$id-mem")
mem_pid=$(docker inspect -f '{{.State.Pid}}' "$id-mem")
# A container killed by the limit fails the load run; what it got through is still printed.
out=$(load "http://127.0.0.1:$mem_port" "$mem_token" "$mem_pid" 99 --clients 64 --small 64 --small-size 1048576 --large-mib 1024 2>&1) || true
echo "$out" | grep -E '^(small uploads|large upload)' || true
cid=$(docker inspect -f '{{.Id}}' "$id-mem")
peak=$(cat "/sys/fs/cgroup/memory/docker/$cid/memory.max_usage_in_bytes" 2>/dev/null || echo 0)
echo "--memory 128m: OOMKilled=$(docker inspect -f '{{.State.OOMKilled}}' "$id-mem"), running=$(docker inspect -f '{{.State.Running}}' "$id-mem"), cgroup peak $((peak / 1048576)) MiB (page cache included)"
