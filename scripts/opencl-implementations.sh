#!/usr/bin/env bash
# Installs the extra OpenCL implementations of the portability check and writes an ICD vendors
# folder of our own that names them (the system's /etc/OpenCL/vendors is never written to):
#   - PoCL (pocl-opencl-icd, installed by `make deps`)
#   - Mesa Rusticl on llvmpipe (Debian mesa-opencl-icd + libclc-15 + libllvmspirvlib15; the device
#     appears only with RUSTICL_ENABLE=llvmpipe; OpenCL C 1.2 front end, no fp64)
#   - Intel's OpenCL CPU runtime (PyPI intel-opencl-rt + intel-cmplr-lib-rt, pip-installed under
#     .build/portability/intel-ocl)
# Usage: scripts/opencl-implementations.sh [--rusticl-only] ; prints the vendors folder on its
# last line. Use it as OCL_ICD_VENDORS=<folder> RUSTICL_ENABLE=llvmpipe (Debian's ocl-icd reads
# OCL_ICD_VENDORS and ignores OCL_ICD_FILENAMES). Whatever cannot be installed is reported on
# stderr with the exact error and left out of the folder.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/.build/portability
VENDORS=$WORK/vendors
INTEL_PREFIX=$WORK/intel-ocl
INTEL_VERSION=${INTEL_OPENCL_RT_VERSION:-2026.2.0}
mkdir -p "$VENDORS"
rm -f "$VENDORS"/*.icd
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
LIBDIR=/usr/lib/x86_64-linux-gnu

apt_install() {
  local missing=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  echo "Installing system packages:$missing" >&2
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null; } \
    2> >(grep -v "^debconf" >&2)
}

# PoCL
pocl=$(ls $LIBDIR/libpocl.so.2* 2>/dev/null | head -1)
if [ -n "$pocl" ]; then echo "$pocl" > "$VENDORS/pocl.icd"; else echo "portability: PoCL not installed (make deps)" >&2; fi

# Rusticl
if apt_install mesa-opencl-icd libclc-15 libllvmspirvlib15 && [ -e $LIBDIR/libRusticlOpenCL.so.1 ]; then
  echo "$LIBDIR/libRusticlOpenCL.so.1" > "$VENDORS/rusticl.icd"
else
  echo "portability: Rusticl unavailable (mesa-opencl-icd did not install or has no libRusticlOpenCL.so.1)" >&2
fi

# Intel OpenCL CPU runtime
if [ "${1:-}" != "--rusticl-only" ]; then
  if [ ! -e "$INTEL_PREFIX/lib/libintelocl.so" ]; then
    echo "Installing intel-opencl-rt==$INTEL_VERSION from PyPI into $INTEL_PREFIX" >&2
    python3 -m pip install -q --disable-pip-version-check --no-warn-script-location --prefix "$INTEL_PREFIX" \
      "intel-opencl-rt==$INTEL_VERSION" "intel-cmplr-lib-rt==$INTEL_VERSION" 2>&1 | grep -v "Running pip as" >&2
  fi
  if [ -e "$INTEL_PREFIX/lib/libintelocl.so" ]; then
    missing=$(ldd "$INTEL_PREFIX/lib/libintelocl.so" | grep "not found" | awk '{print $1}' | sort -u | tr '\n' ' ')
    if [ -n "$missing" ]; then
      echo "portability: Intel OpenCL runtime lacks libraries: $missing" >&2
    else
      echo "$INTEL_PREFIX/lib/libintelocl.so" > "$VENDORS/intel-cpu.icd"
    fi
  else
    echo "portability: intel-opencl-rt did not install (see pip's error above)" >&2
  fi
fi
echo "$VENDORS"
