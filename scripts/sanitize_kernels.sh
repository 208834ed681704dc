#!/usr/bin/env bash
# Build the native cell kernels with AddressSanitizer + UndefinedBehaviorSanitizer and run the cell tests on them.
#
#   scripts/sanitize_kernels.sh            # the kernel tests (fast path vs torch, argument checks, properties)
#   scripts/sanitize_kernels.sh tests/x.py # other test files
#
# The kernels are compiled into a fresh private cache with NCP_CONTROL_EXTRA_CFLAGS; Python itself is not
# instrumented, so the ASan runtime is preloaded (LD_PRELOAD) and leak detection is off (CPython keeps memory
# until exit). Any out-of-bounds access or undefined behaviour aborts the process (no recovery), so a clean pytest
# summary means a clean run. Exit status: pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
CC="${CC:-cc}"
ASAN_LIB="$("$CC" -print-file-name=libasan.so)"
UBSAN_LIB="$("$CC" -print-file-name=libubsan.so)"
if [ ! -e "$ASAN_LIB" ]; then
    echo "sanitize_kernels: $CC has no libasan.so (install the compiler's sanitizer runtime, e.g. libasan8)" >&2
    exit 2
fi
CACHE="$(mktemp -d)"
trap 'rm -rf "$CACHE"' EXIT
export NCP_CONTROL_CACHE_DIR="$CACHE"
export NCP_CONTROL_EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:verify_asan_link_order=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [ "$#" -eq 0 ]; then
    # All cell and kernel tests except the loader properties (no C code) and the two tests that rebuild the kernels
    # in fresh caches (they test the cache, as tests/test_kernel_cache.py does; a -O3 ASan build can pass the
    # 120 s compile timeout on a loaded machine).
    set -- tests/test_cells_fast.py tests/test_cells.py tests/test_cells_parity.py tests/test_kernel_args.py \
        tests/test_properties.py -k "not truncated_files and not random_bytes and not random_manifests \
        and not compiled_library_is_cached and not no_compiler_falls_back"
fi
echo "sanitize_kernels: $("$CC" --version | head -1); flags: $NCP_CONTROL_EXTRA_CFLAGS"
echo "sanitize_kernels: LD_PRELOAD=$ASAN_LIB $UBSAN_LIB"
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" "$PY" - <<'PYEOF'
from ncp_control.cells import native
for name in ("ltc_kernel", "cfc_kernel"):
    lib = native.load(name)
    print(f"sanitize_kernels: {name}: {native.status()[name]} -> {getattr(lib, '_name', None)}")
    if lib is None:
        raise SystemExit(f"sanitize_kernels: {name} could not be built with the sanitizers")
PYEOF
# Canary: the sanitizers are live. Bypassing the Python checks (a private function), inputs with 3 features where
# the cell has 32 must be caught by AddressSanitizer as an out-of-bounds read and abort that process.
if LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" "$PY" - > "$CACHE/canary.log" 2>&1 <<'PYEOF'
import torch
from ncp_control import wirings
from ncp_control.cells import ltc_fast
from ncp_control.cells.ltc import LTCCell
cell = LTCCell(wirings.AutoNCP(19, 1, seed=0), 32)
x, h, dt = torch.randn(4, 2, 3), torch.zeros(2, 19), torch.full((4, 2), 0.1)
with torch.no_grad():
    ltc_fast._run_forward(ltc_fast._Spec(cell, 4, 2, 1e-6), x, h, dt, None, ltc_fast._params(cell), save=False)
PYEOF
then
    echo "sanitize_kernels: canary NOT caught: the sanitizers are not active" >&2
    exit 1
fi
echo "sanitize_kernels: canary caught: $(grep -m1 -o 'AddressSanitizer: [a-z-]*' "$CACHE/canary.log")"
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" "$PY" -m pytest -q -p no:cacheprovider "$@"
