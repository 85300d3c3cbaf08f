// The fixtures the targets start from (read once; never written).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '../../..');
export const MANIFEST_DIR = join(ROOT, 'test/fixtures/manifests');
export const MANIFEST_PATH = join(MANIFEST_DIR, 'tiny_manifest_q4.json');
export const NPZ_PATH = join(MANIFEST_DIR, 'tiny_quantized_q4.npz');
export const REPORT_PATH = join(MANIFEST_DIR, 'tiny_accuracy_q4.json');
export const TINY_LLAMA = join(ROOT, 'test/fixtures/tiny-llama');

export const manifestText = (): string => readFileSync(MANIFEST_PATH, 'utf8');
export const reportText = (): string => readFileSync(REPORT_PATH, 'utf8');
