#!/usr/bin/env bash
# Builds the image p2pnode:test: a static p2pnode binary (glibc, crt-static) in a FROM scratch image, for
# the host's architecture (x86_64 or aarch64). Offline when cargo's cache holds every crate, else fetching.
# Usage: docker/build.sh [IMAGE_TAG]
#        docker/build.sh --binary   the static binary alone (no Docker needed): prints its path, which runs
#                                   on any Linux of that architecture
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-p2pnode:test}"
target="$(uname -m)-unknown-linux-gnu"
# With an explicit --target, RUSTFLAGS apply to the binary only, not to build scripts and proc macros.
build() {
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
        RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -q -p p2pnode --target "$target" "$@"
}
build --offline 2>/dev/null || build
binary="${CARGO_TARGET_DIR:-target}/$target/release/p2pnode"
if [ "$tag" = "--binary" ]; then
    echo "$binary"
    exit 0
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/"
cp docker/Dockerfile "$context/"
# The legacy builder (no buildx here) warns on stderr at every build: show its output only on failure.
if ! log=$(docker build -q -t "$tag" "$context" 2>&1); then
    echo "$log" >&2
    exit 1
fi
echo "$tag"
