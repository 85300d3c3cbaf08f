#!/usr/bin/env bash
# Builds a second copy of the Node addon whose CUDA part runs on the CPU emulation of CUDA, so that the JavaScript
# side of the GPU paths (engineInfo's GPU, quantize and the output check with gpu: 1, the forward pass with backend
# 'gpu', `apl-quant run --backend gpu`) runs its tests where no GPU is: native/ is copied to
# native/build/emu-addon/ and built by node-gyp with nvcc-emu as its nvcc and the emulation (emu.o) as
# libcudart_static. Prints the addon's path; tests load it through APL_ADDON=<path> (native/load.ts).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
here="$root/test/native/cuda-emu"
T="$root/native/build/emu-addon"
mkdir -p "$T/lib"
# the addon's sources as they are now (rsync-free: a copy, kept only when something changed, so builds are incremental)
mkdir -p "$T/src"
cp -ru native/src/. "$T/src/"
cp -u native/binding.gyp native/find-nvcc.js "$T/"
if [ ! -f "$T/lib/libcudart_static.a" ] || [ "$here/emu.cc" -nt "$T/lib/libcudart_static.a" ] ||
  [ "$here/cuda_runtime.h" -nt "$T/lib/libcudart_static.a" ]; then
  g++ -std=c++17 -O2 -fPIC -Wall -c "$here/emu.cc" -o "$T/lib/emu.o"
  rm -f "$T/lib/libcudart_static.a"
  ar rcs "$T/lib/libcudart_static.a" "$T/lib/emu.o"
  # node-gyp's makefile does not know the addon depends on this library: without its output, it links it again
  rm -f "$T/build/Release/apl_quant.node" "$T/build/Release/obj.target/apl_quant.node"
fi
gyp="$(node -p "require.resolve('node-gyp/bin/node-gyp.js')")"
cd "$T"
export LDFLAGS="-L$T/lib ${LDFLAGS:-}"  # searched before binding.gyp's -L/usr/local/cuda/lib64
# node-gyp finds the Node headers as the main build does: npm passes its config (nodedir) when it runs this script;
# run by hand, ask npm for it.
if [ -z "${npm_config_nodedir:-}" ]; then
  nd="$(npm config get nodedir 2>/dev/null || true)"
  [ -n "$nd" ] && [ "$nd" != undefined ] && [ "$nd" != null ] && export npm_config_nodedir="$nd"
fi
if [ ! -f build/config.gypi ] || [ binding.gyp -nt build/config.gypi ]; then
  node "$gyp" configure -- -Dnvcc="$here/nvcc-emu" >&2
fi
node "$gyp" build --jobs 2 >&2
echo "$T/build/Release/apl_quant.node"
