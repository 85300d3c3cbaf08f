# What the arm64 instruction-count scripts share (bench/arm64-attention-insns.sh, arm64-kquant-infer-insns.sh,
# arm64-kquant-insns.sh), sourced by them after `set -euo pipefail`: the tools, the object folder check, the
# driver build and the count. An instruction count, NOT a speed: qemu's timings say nothing about an arm64 CPU,
# and an instruction count ignores latency, issue width and memory.
#
# The count: qemu -d in_asm,exec,nochain writes each translation block's instructions once (IN:) and a Trace
# line each time a block runs; the log is streamed through a FIFO into awk, which adds up the size of every
# block run. One run of the driver, one thread; insns_net subtracts the same run with argv[1] = 0 (everything
# but the measured call: setup, random data, the kernel choice and its self-check).
#
# Env: CXX_ARM64 (aarch64-linux-gnu-g++), AR_ARM64 (aarch64-linux-gnu-ar), QEMU_ARM64 (qemu-aarch64),
# ARM64_SYSROOT (/usr/aarch64-linux-gnu).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CXX="${CXX_ARM64:-aarch64-linux-gnu-g++}"
AR="${AR_ARM64:-aarch64-linux-gnu-ar}"
QEMU="${QEMU_ARM64:-qemu-aarch64}"
sysroot="${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}"
INSNS_QEMU=() # extra qemu options of the script (-cpu max)

# insns_build OBJDIR PROBE DRIVER: stops unless OBJDIR/PROBE exists (test:native:arm64 builds the objects),
# then compiles bench/DRIVER.cc and links it into $tmp/drv with an archive of OBJDIR's objects (the tests'
# programs left out), from which the linker takes the objects the driver needs.
insns_build() {
  local b=$1 probe=$2 driver=$3
  [ -f "$b/$probe" ] || {
    echo "run npm run test:native:arm64 first (no $b/$probe)" >&2
    exit 1
  }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$CXX" -std=c++17 -O2 -ffp-contract=off -march=armv8-a -c "bench/$driver.cc" -o "$tmp/drv.o"
  local objs=() o
  for o in "$b"/*.o; do [[ "$(basename "$o")" == test_* ]] || objs+=("$o"); done
  "$AR" rcs "$tmp/objs.a" "${objs[@]}"
  "$CXX" "$tmp/drv.o" "$tmp/objs.a" -o "$tmp/drv" -lpthread
}

# insns_count RUN [VAR=VALUE...] -- ARG...: "instructions name": the guest instructions of one run of the
# driver with argv RUN ARG... (under the environment VAR=VALUE...) and the first line it prints (its kernel).
insns_count() {
  local run=$1 envs=()
  shift
  while [ "$1" != -- ]; do
    envs+=("$1")
    shift
  done
  shift
  local f="$tmp/fifo.$RANDOM"
  mkfifo "$f"
  awk '/^IN:/ {inb=1; start=""; n=0; next}
    inb && /^0x/ { if (start=="") { start=$1; sub(/^0x0*/, "", start); sub(/:$/, "", start) } n++; next }
    inb && /^$/ { if (start!="") size[start]=n; inb=0; next }
    /^Trace/ { split($4, a, "/"); pc=a[2]; sub(/^0*/, "", pc); total+=size[pc]; next }
    END { printf "%d\n", total }' "$f" >"$f.out" &
  env ${envs[@]+"${envs[@]}"} "$QEMU" ${INSNS_QEMU[@]+"${INSNS_QEMU[@]}"} -L "$sysroot" -d in_asm,exec,nochain \
    -D "$f" "$tmp/drv" "$run" "$@" >"$f.name"
  wait
  echo "$(cat "$f.out") $(head -n 1 "$f.name")"
  rm -f "$f" "$f.out" "$f.name" # (a later $RANDOM may repeat the name)
}

# insns_net [VAR=VALUE...] -- ARG...: "instructions name": insns_count 1 minus insns_count 0 (the same run
# without the measured call).
insns_net() {
  local a b name
  read -r a name < <(insns_count 1 "$@")
  read -r b _ < <(insns_count 0 "$@")
  echo "$((a - b)) $name"
}
