// Prints the path of nvcc for binding.gyp (PATH, then /usr/local/cuda/bin), or nothing when there is none or
// APL_NO_CUDA=1: the addon then builds without its CUDA part.
const { existsSync } = require('node:fs');
const { delimiter, join } = require('node:path');

function find() {
  if (process.env.APL_NO_CUDA === '1') return '';
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'nvcc'))) return join(dir, 'nvcc');
  }
  for (const p of [process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin/nvcc'), '/usr/local/cuda/bin/nvcc']) {
    if (p && existsSync(p)) return p;
  }
  return '';
}
process.stdout.write(find());
