#!/usr/bin/env bash
# Builds the Windows release binary, p2pnode.exe, on Linux: cross-compiled with mingw
# (x86_64-pc-windows-gnu; `apt-get install gcc-mingw-w64-x86-64` and `rustup target add
# x86_64-pc-windows-gnu` first), with the C runtime linked in so it runs with no DLL beside it.
# Offline when cargo's cache holds every crate, else fetching. Prints the .exe's path.
# Usage: windows/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-pc-windows-gnu
build() {
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
        RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -q -p p2pnode --target "$target" "$@"
}
build --offline 2>/dev/null || build
exe="${CARGO_TARGET_DIR:-target}/$target/release/p2pnode.exe"
# Only the system's own DLLs may be imported: a mingw runtime DLL would have to travel with the .exe.
foreign=$(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^\s*DLL Name: //p' \
    | grep -viE '^(kernel32|ntdll|advapi32|ws2_32|bcrypt|bcryptprimitives|userenv|user32|shell32|ole32|oleaut32|combase|secur32|crypt32|iphlpapi|msvcrt|api-ms-win-.*)\.dll$' || true)
if [ -n "$foreign" ]; then
    echo "p2pnode.exe needs DLLs that Windows does not have: $foreign" >&2
    exit 1
fi
echo "$exe"
