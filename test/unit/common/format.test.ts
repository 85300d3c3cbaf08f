// The one byte formatter (binary units) every view uses: webviews, pickers and progress, hover, CLI.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatPercent, formatSeconds } from '../../../server/src/common/format';

test('formatBytes: binary units, 0-2 decimals by magnitude, a dash for nothing', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1500), '1.46 KiB');
  assert.equal(formatBytes(145e6), '138 MiB');
  assert.equal(formatBytes(2.2e9), '2.05 GiB');
  assert.equal(formatBytes(20 * 1024 ** 2), '20.0 MiB');
  assert.equal(formatBytes(Number.NaN), '—');
  assert.equal(formatBytes(null), '—');
});

test('formatPercent and formatSeconds', () => {
  assert.equal(formatPercent(0.1234), '12.34 %');
  assert.equal(formatPercent(null), '—');
  assert.equal(formatSeconds(1.5), '1.50 s');
  assert.equal(formatSeconds(75), '1 min 15 s');
});
