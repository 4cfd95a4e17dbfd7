#!/usr/bin/env bash
# Builds the lode-server image without pulling anything: compiles a statically linked
# lode-server on this machine, then builds the `runtime` stage of docker/Dockerfile (which starts
# `FROM scratch`) on top of it. Works with the legacy builder and with BuildKit.
#
#     docker/build.sh [--tag NAME] [--binary FILE]
#
# --tag     image name (default lode-server:latest)
# --binary  use this statically linked lode-server instead of compiling one
set -euo pipefail
cd "$(dirname "$0")/.."

tag="lode-server:latest"
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    *) echo "usage: docker/build.sh [--tag NAME] [--binary FILE]" >&2; exit 2 ;;
  esac
done

ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ ! -f "$ca_bundle" ]; then
  echo "docker/build.sh: $ca_bundle is missing; install the CA certificates (Debian: apt-get install ca-certificates)" >&2
  exit 1
fi

if [ -z "$binary" ]; then
  triple="$(rustc -vV | sed -n 's/^host: //p')"
  case "$triple" in
    *-linux-gnu) ;;
    *) echo "docker/build.sh: needs a *-linux-gnu Rust host, not $triple" >&2; exit 1 ;;
  esac
  # Static glibc through the target's own flags, so the usual builds keep their artifacts.
  flags_var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  env "$flags_var=-C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" --bin lode-server
  binary="target/$triple/release/lode-server"
fi
if ldd "$binary" 2>&1 | grep -q "=>"; then
  echo "docker/build.sh: $binary is dynamically linked; the image has no libraries for it" >&2
  exit 1
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/out/usr/local/bin" "$context/out/etc/ssl/certs" "$context/out/data" \
  "$context/out/backups"
cp "$binary" "$context/out/usr/local/bin/lode-server"
if command -v strip >/dev/null; then
  strip "$context/out/usr/local/bin/lode-server"
fi
cp "$ca_bundle" "$context/out/etc/ssl/certs/ca-certificates.crt"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
source_url="$(git remote get-url origin 2>/dev/null || true)"

# The stand-in `build` stage holds what the Dockerfile's build stage would have produced; the
# runtime stage is used as written.
{
  echo "FROM scratch AS build"
  echo "COPY out/ /out/"
  sed -n '/^FROM scratch AS runtime$/,$p' docker/Dockerfile
} | docker build --quiet --file - \
      --build-arg "VERSION=$version" \
      --build-arg "REVISION=$revision" \
      --build-arg "SOURCE=$source_url" \
      --tag "$tag" "$context" >/dev/null
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
