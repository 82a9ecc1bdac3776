#!/usr/bin/env bash
# make gpu-check: builds gpu-bundle/, a self-contained copy of jem-gpu and jem-bench for a GPU
# machine without Swift (static Swift stdlib; every non-glibc shared library they load, found with
# ldd, copied beside them), plus gpu-bundle/run-gpu-check.sh, the one script to run there.
# With --run, the runner is then run here as well (PoCL as a stand-in device, scaled down).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${GPU_BUNDLE:-gpu-bundle}
SCRATCH=.build-static
# A static Foundation links FoundationNetworking (jem-gpu fetch), which needs libcurl's dev symlink.
if ! dpkg-query -W -f='${Status}' libcurl4-openssl-dev 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "Installing libcurl4-openssl-dev (static-stdlib link)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libcurl4-openssl-dev >/dev/null
fi
swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product jem-gpu
swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product jem-bench
rm -rf "$BUNDLE"; mkdir -p "$BUNDLE"
cp "$SCRATCH/release/jem-gpu" "$SCRATCH/release/jem-bench" "$BUNDLE/"
cp scripts/run-gpu-check.sh "$BUNDLE/"
# Debug info is most of the 85 MB of each binary; the GPU machine needs none of it.
command -v strip >/dev/null && strip --strip-debug "$BUNDLE/jem-gpu" "$BUNDLE/jem-bench"
# glibc's own libraries (and the dynamic loader) stay the target's; everything else travels.
is_glibc() {
  case "$(basename "$1")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|libutil.so*|ld-linux*|linux-vdso*) return 0 ;;
  esac
  return 1
}
for binary in "$BUNDLE/jem-gpu" "$BUNDLE/jem-bench"; do
  ldd "$binary" | awk '/=> \// { print $3 }' | while read -r lib; do
    # Already beside the binary (found there through its RUNPATH $ORIGIN)?
    [ "$(dirname "$(readlink -f "$lib")")" = "$(readlink -f "$BUNDLE")" ] && continue
    is_glibc "$lib" || cp -L "$lib" "$BUNDLE/"
  done
done
if ldd "$BUNDLE/jem-gpu" "$BUNDLE/jem-bench" | grep -q "not found"; then
  echo "gpu-check: unresolved libraries:"; ldd "$BUNDLE/jem-gpu" | grep "not found"; exit 1
fi
git rev-parse HEAD > "$BUNDLE/COMMIT" 2>/dev/null || true
echo "Bundle $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)):"; ls -la "$BUNDLE"
echo "Copy it to the GPU machine and run: ./$BUNDLE/run-gpu-check.sh   (results in gpu-check-results/)"
if [ "${1:-}" = "--run" ]; then
  "./$BUNDLE/run-gpu-check.sh" "${@:2}"
fi
