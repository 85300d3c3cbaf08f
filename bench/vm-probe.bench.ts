// Compiles and runs bench/vm-probe.cc (g++ -O2): this machine's cost of the non-arithmetic parts of a threaded
// quantize call — ALU and DRAM-read scaling from 1 to 2 threads, first-touch page faults on 4 KiB and 2 MiB pages
// at 1 and 2 threads. docs/PERFORMANCE.md ("The 2-thread question") reads its figures.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const src = resolve(__dirname, 'vm-probe.cc');
const dir = join(tmpdir(), 'apl-bench-vm-probe');
mkdirSync(dir, { recursive: true });
const bin = join(dir, 'vm-probe');
const cc = spawnSync(process.env.CXX ?? 'g++', ['-std=c++17', '-O2', '-pthread', src, '-o', bin], { stdio: 'inherit' });
if (cc.status !== 0) {
  console.log('vm-probe: no C++ compiler (g++), skipped');
  process.exit(0);
}
const r = spawnSync(bin, [], { stdio: 'inherit' });
process.exit(r.status ?? 1);
