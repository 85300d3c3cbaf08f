import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCell, significantDigits } from '../../../server/src/common/cells';

test('formatCell keeps the exponent whole and fits ten characters', () => {
  assert.equal(formatCell(-1.52587890625e-5, 'float32'), '-1.5259e-5');
  assert.equal(formatCell(8.991360664367676e-10, 'float32'), '8.9914e-10');
  assert.equal(formatCell(1e20), '1e20');
  assert.equal(formatCell(-0.333333343267, 'float32'), '-0.3333333');
  assert.equal(formatCell(-123456.789, 'float32'), '-123456.8');
  for (let i = 0; i < 2000; i++) {
    const v = (Math.sin(i) * 10) ** ((i % 41) - 20);
    if (!Number.isFinite(v) || v === 0) continue;
    const s = formatCell(v, 'float64');
    assert.ok(s.length <= 10, `${v} → ${s}`);
    assert.ok(Math.abs(Number(s) - v) <= Math.abs(v) * 1e-3, `${v} → ${s} reads as ${Number(s)}`);
  }
});

test('formatCell shows the digits the dtype holds; integers exactly', () => {
  assert.equal(formatCell(0.1234567890123, 'float16'), '0.1235');
  assert.equal(formatCell(3.140625, 'bfloat16'), '3.14');
  assert.equal(formatCell(0.1234567890123, 'float32'), '0.1234568');
  assert.equal(significantDigits('uint8'), undefined);
  assert.equal(formatCell(255, 'uint8'), '255');
  assert.equal(formatCell(-900719925, 'int64'), '-900719925');
  assert.equal(formatCell(-9007199254, 'int64'), '-9.0072e9');
  assert.equal(formatCell(12345678901, 'int64'), '1.23457e10');
  assert.equal(formatCell(Number.NaN), 'NaN');
  assert.equal(formatCell(Number.NEGATIVE_INFINITY), '-Inf');
});
