{
  # The addon: scalar reference + SIMD variants (each in its own static library, compiled with its own -m flags and
  # chosen at run time), and CUDA kernels when nvcc is found (linked with the static CUDA runtime, so the addon
  # loads on machines with no GPU or driver).
  'variables': {
    'nvcc%': '<!(node find-nvcc.js)',
    'cuda_obj': '<!(node -p "require(\'path\').resolve(\'build/cuda/apl_cuda.o\')")',
    'kquant_cuda_obj': '<!(node -p "require(\'path\').resolve(\'build/cuda/apl_kquant_cuda.o\')")',
    'cuda_infer_obj': '<!(node -p "require(\'path\').resolve(\'build/cuda/apl_infer_cuda.o\')")',
    'cuda_forward_obj': '<!(node -p "require(\'path\').resolve(\'build/cuda/apl_forward_cuda.o\')")',
    'cuda_check_obj': '<!(node -p "require(\'path\').resolve(\'build/cuda/apl_check_cuda.o\')")',
    'common_cflags': ['-std=c++17', '-O3', '-ffp-contract=off', '-fexceptions', '-Wall', '-Wno-unused-function'],
  },
  'target_defaults': {
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++20'],
    'cflags_cc': ['<@(common_cflags)'],
    'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_CPP_EXCEPTIONS_ALL'],
    'xcode_settings': {'GCC_ENABLE_CPP_EXCEPTIONS': 'YES', 'OTHER_CPLUSPLUSFLAGS': ['-ffp-contract=off']},
    'conditions': [
      # arm64: the x86 kernel libraries still build (their sources compile to stubs off x86) but without their
      # -m flags, which an arm64 compiler rejects; the NEON kernels need no flag (NEON is baseline on aarch64).
      ['target_arch=="arm64"', {
        'cflags_cc!': ['-mavx2', '-mf16c', '-mfma', '-mno-fma', '-msse4.1', '-mpclmul', '-mavx512f', '-mavx512bw', '-mavx512vl',
                       '-mavx512vnni', '-mamx-tile', '-mamx-int8'],
      }],
    ],
  },
  'targets': [
    {
      'target_name': 'apl_simd',
      'type': 'static_library',
      'sources': ['src/cpu/avx2.cc', 'src/cpu/avx512.cc', 'src/cpu/neon.cc', 'src/cpu/kquant_avx2.cc',
                  'src/cpu/kquant_neon.cc', 'src/cpu/kquant_avx2_fma.cc', 'src/cpu/kquant_avx512.cc',
                  'src/cpu/crc32_pclmul.cc'],
      'conditions': [
        ['target_arch=="x64"', {
          'sources!': ['src/cpu/avx2.cc', 'src/cpu/avx512.cc', 'src/cpu/kquant_avx2.cc', 'src/cpu/kquant_avx2_fma.cc',
                       'src/cpu/kquant_avx512.cc', 'src/cpu/crc32_pclmul.cc'],
          'dependencies': ['apl_avx2', 'apl_avx512', 'apl_fma', 'apl_kq512', 'apl_pclmul'],
        }],
      ],
    },
    {
      'target_name': 'apl_avx2',
      'type': 'static_library',
      'sources': ['src/cpu/avx2.cc', 'src/cpu/kquant_avx2.cc'],
      'cflags_cc': ['-mavx2', '-mf16c', '-mno-fma'],
    },
    {
      # The kquant convert kernel again with FMA (kquant_avx2_fma.cc: only exact products fused, the same bits),
      # chosen at run time where the CPU has FMA (kq_select_kernel).
      'target_name': 'apl_fma',
      'type': 'static_library',
      'sources': ['src/cpu/kquant_avx2_fma.cc'],
      'cflags_cc': ['-mavx2', '-mf16c', '-mfma'],
    },
    {
      # The kquant convert kernel with 16 groups per vector (kquant_avx512.cc; FMA as apl_fma: only exact
      # products fused, the same bits), chosen at run time where the CPU has AVX-512F/VL and FMA (kq_select_kernel;
      # APL_NO_AVX512=1 takes the AVX2 builds).
      'target_name': 'apl_kq512',
      'type': 'static_library',
      'sources': ['src/cpu/kquant_avx512.cc'],
      'cflags_cc': ['-mavx512f', '-mavx512vl', '-mavx2', '-mf16c', '-mfma', '-Wno-maybe-uninitialized'],
    },
    {
      # CRC-32 by carry-less multiplication (crc32.cc uses it where the CPU has PCLMULQDQ).
      'target_name': 'apl_pclmul',
      'type': 'static_library',
      'sources': ['src/cpu/crc32_pclmul.cc'],
      'cflags_cc': ['-msse4.1', '-mpclmul'],
    },
    {
      'target_name': 'apl_avx512',
      'type': 'static_library',
      'sources': ['src/cpu/avx512.cc'],
      'cflags_cc': ['-mavx512f', '-mavx512bw', '-mavx2', '-mf16c', '-mno-fma', '-Wno-maybe-uninitialized'],
    },
    {
      # Inference kernels (src/infer/, src/cpu/infer_*.cc): the same scheme, each SIMD variant with its own flags.
      'target_name': 'apl_infer_simd',
      'type': 'static_library',
      'sources': ['src/cpu/infer_avx2.cc', 'src/cpu/infer_vnni.cc', 'src/cpu/infer_avx512.cc', 'src/cpu/infer_neon.cc',
                  'src/cpu/infer_kquant_avx2.cc', 'src/cpu/infer_kquant_vnni.cc', 'src/cpu/infer_kquant_neon.cc',
                  'src/cpu/infer_amx.cc'],
      'conditions': [
        ['target_arch=="x64"', {
          'sources!': ['src/cpu/infer_avx2.cc', 'src/cpu/infer_vnni.cc', 'src/cpu/infer_avx512.cc',
                       'src/cpu/infer_kquant_avx2.cc', 'src/cpu/infer_kquant_vnni.cc', 'src/cpu/infer_amx.cc'],
          'dependencies': ['apl_infer_avx2', 'apl_infer_vnni', 'apl_infer_avx512', 'apl_infer_amx'],
        }],
      ],
    },
    {
      # The NEON kernels again with the dot-product extension (vdotq_s32; groupwise and kquant), chosen at run time
      # only where the CPU has it (src/infer/kernels.cc); the plain ones above run on every arm64 CPU. Off arm64 they
      # compile to stubs.
      'target_name': 'apl_infer_dotprod',
      'type': 'static_library',
      'sources': ['src/cpu/infer_neon_dotprod.cc', 'src/cpu/infer_kquant_neon_dotprod.cc'],
      'conditions': [
        ['target_arch=="arm64"', {
          'cflags_cc': ['-march=armv8.2-a+dotprod'],
          'xcode_settings': {'OTHER_CPLUSPLUSFLAGS': ['-ffp-contract=off', '-march=armv8.2-a+dotprod']},
        }],
      ],
    },
    {
      'target_name': 'apl_infer_avx2',
      'type': 'static_library',
      'sources': ['src/cpu/infer_avx2.cc', 'src/cpu/infer_kquant_avx2.cc'],
      'cflags_cc': ['-mavx2', '-mf16c', '-mfma'],
    },
    {
      'target_name': 'apl_infer_vnni',
      'type': 'static_library',
      'sources': ['src/cpu/infer_vnni.cc', 'src/cpu/infer_kquant_vnni.cc'],
      'cflags_cc': ['-mavx2', '-mf16c', '-mfma', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512vnni'],
    },
    {
      'target_name': 'apl_infer_avx512',
      'type': 'static_library',
      'sources': ['src/cpu/infer_avx512.cc'],
      'cflags_cc': ['-mavx2', '-mf16c', '-mfma', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512vnni',
                    '-Wno-maybe-uninitialized'],
    },
    {
      # The prompt GEMM on AMX tiles (avx512-amx), listed at run time only where the CPU has AMX-INT8 and the OS
      # grants the tile data state (src/infer/kernels.cc).
      'target_name': 'apl_infer_amx',
      'type': 'static_library',
      'sources': ['src/cpu/infer_amx.cc'],
      'cflags_cc': ['-mavx2', '-mf16c', '-mfma', '-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512vnni', '-mamx-tile',
                    '-mamx-int8', '-Wno-maybe-uninitialized'],
    },
    {
      'target_name': 'apl_quant',
      'sources': ['src/addon.cc', 'src/engine.cc', 'src/check.cc', 'src/crc32.cc', 'src/cpu/scalar.cc', 'src/cpu/dispatch.cc', 'src/kquant_engine.cc',
                  'src/kquant_addon.cc', 'src/infer_addon.cc', 'src/io.cc', 'src/infer/kernels.cc', 'src/infer/pool.cc',
                  'src/infer/linear.cc', 'src/infer/model.cc', 'src/infer/kquant_linear.cc',
                  'src/infer/kv.cc', 'src/infer/attention.cc'],
      'include_dirs': ['<!(node -p "require(\'node-addon-api\').include_dir")'],
      'dependencies': ['apl_simd', 'apl_infer_simd', 'apl_infer_dotprod'],
      'conditions': [
        ['target_arch=="x64"', {'dependencies': ['apl_avx2', 'apl_avx512', 'apl_fma', 'apl_kq512', 'apl_pclmul', 'apl_infer_avx2', 'apl_infer_vnni', 'apl_infer_avx512', 'apl_infer_amx']}],
        ['nvcc!=""', {
          'defines': ['APL_HAVE_CUDA'],
          'actions': [{
            'action_name': 'nvcc_quant',
            'inputs': ['src/cuda/quant.cu', 'src/cuda/cuda.h', 'src/quant.h', 'src/quant_rows.h'],
            'outputs': ['<(cuda_obj)'],
            'action': ['<(nvcc)', '-c', 'src/cuda/quant.cu', '-o', '<(cuda_obj)', '-O3', '-std=c++17', '--fmad=false',
                       '-Xcompiler', '-fPIC', '-gencode', 'arch=compute_80,code=sm_80',
                       '-gencode', 'arch=compute_90,code=sm_90'],
            'message': 'nvcc src/cuda/quant.cu',
            # The object joins the link (and relinks the addon when it changes).
            'process_outputs_as_sources': 1,
          }, {
            'action_name': 'nvcc_kquant',
            'inputs': ['src/cuda/kquant.cu', 'src/cuda/kquant_cuda.h', 'src/kquant.h', 'src/quant.h'],
            'outputs': ['<(kquant_cuda_obj)'],
            'action': ['<(nvcc)', '-c', 'src/cuda/kquant.cu', '-o', '<(kquant_cuda_obj)', '-O3', '-std=c++17',
                       '--fmad=false', '-Xcompiler', '-fPIC', '-gencode', 'arch=compute_80,code=sm_80',
                       '-gencode', 'arch=compute_90,code=sm_90'],
            'message': 'nvcc src/cuda/kquant.cu',
            'process_outputs_as_sources': 1,
          }, {
            'action_name': 'nvcc_infer',
            'inputs': ['src/cuda/infer.cu', 'src/cuda/infer.h', 'src/cuda/linear.cuh', 'src/cuda/gpu_index.h',
                       'src/infer/ref.h', 'src/infer/infer.h', 'src/quant.h'],
            'outputs': ['<(cuda_infer_obj)'],
            'action': ['<(nvcc)', '-c', 'src/cuda/infer.cu', '-o', '<(cuda_infer_obj)', '-O3', '-std=c++17',
                       '--fmad=false', '-Xcompiler', '-fPIC', '-gencode', 'arch=compute_80,code=sm_80',
                       '-gencode', 'arch=compute_90,code=sm_90'],
            'message': 'nvcc src/cuda/infer.cu',
            'process_outputs_as_sources': 1,
          }, {
            'action_name': 'nvcc_forward',
            'inputs': ['src/cuda/forward.cu', 'src/cuda/forward.h', 'src/cuda/linear.cuh', 'src/cuda/gpu_index.h',
                       'src/cuda/cuda.h', 'src/infer/ref.h', 'src/infer/infer.h', 'src/infer/model.h',
                       'src/quant.h'],
            'outputs': ['<(cuda_forward_obj)'],
            'action': ['<(nvcc)', '-c', 'src/cuda/forward.cu', '-o', '<(cuda_forward_obj)', '-O3', '-std=c++17',
                       '--fmad=false', '-Xcompiler', '-fPIC', '-gencode', 'arch=compute_80,code=sm_80',
                       '-gencode', 'arch=compute_90,code=sm_90'],
            'message': 'nvcc src/cuda/forward.cu',
            'process_outputs_as_sources': 1,
          }, {
            'action_name': 'nvcc_check',
            'inputs': ['src/cuda/check.cu', 'src/cuda/check_cuda.h', 'src/check.h', 'src/quant.h',
                       'src/quant_rows.h', 'src/kquant.h', 'src/kquant_check.h'],
            'outputs': ['<(cuda_check_obj)'],
            'action': ['<(nvcc)', '-c', 'src/cuda/check.cu', '-o', '<(cuda_check_obj)', '-O3', '-std=c++17',
                       '--fmad=false', '-Xcompiler', '-fPIC', '-gencode', 'arch=compute_80,code=sm_80',
                       '-gencode', 'arch=compute_90,code=sm_90'],
            'message': 'nvcc src/cuda/check.cu',
            'process_outputs_as_sources': 1,
          }],
          'libraries': ['-L/usr/local/cuda/lib64', '-lcudart_static', '-ldl', '-lrt', '-lpthread'],
        }],
      ],
    },
  ],
}
