// The default --format (server/src/convert/options.ts): kquant where it applies (2 and 4 bits, no groupwise-only
// flag), groupwise otherwise; an explicit --format always wins. Why kquant: README "Choosing --format".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_FORMAT, defaultFormat, settingsFrom } from '../../../server/src/convert/options';

test('the default format is kquant at 2 and 4 bits, groupwise at 1 and 8 bits and with groupwise-only flags', () => {
  assert.equal(DEFAULT_FORMAT, 'kquant');
  assert.equal(settingsFrom({ source: 'x', bits: 4 }).format, 'kquant');
  assert.equal(settingsFrom({ source: 'x', bits: 2 }).format, 'kquant');
  assert.equal(settingsFrom({ source: 'x', bits: 8 }).format, 'groupwise');
  assert.equal(settingsFrom({ source: 'x', bits: 1 }).format, 'groupwise');
  assert.equal(settingsFrom({ source: 'x', bits: 4, groupSize: 32 }).format, 'groupwise');
  assert.equal(settingsFrom({ source: 'x', bits: 4, groupSize: 'row' }).format, 'groupwise');
  assert.equal(settingsFrom({ source: 'x', bits: 4, symmetric: true }).format, 'groupwise');
  assert.equal(settingsFrom({ source: 'x', bits: 2, scaleDtype: 'f32' }).format, 'groupwise');
  assert.equal(settingsFrom({ source: 'x', bits: 4, scaleDtype: 'f16' }).format, 'kquant');
  assert.equal(settingsFrom({ source: 'x', bits: 4, format: 'groupwise' }).format, 'groupwise');
  assert.equal(defaultFormat({ bits: 4, symmetric: false }), 'kquant');
  assert.throws(() => settingsFrom({ source: 'x', bits: 8, format: 'kquant' }), /--format kquant needs --bits 2 or 4/);
});
