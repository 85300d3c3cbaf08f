import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bitWidthCaveat, failureAdvice } from '../../../server/src/common/advice';
import { normalizeReport, reportTitle } from '../../../server/src/report/read';
import { DEFAULT_TOLERANCES } from '../../../server/src/report/report';

test('the bit picker warns that 1- and 2-bit fail the default tolerance by design, not 4 or 8', () => {
  assert.match(bitWidthCaveat(1, DEFAULT_TOLERANCES[1]) ?? '', /fails by design: about 60 % error, above the 50 %/);
  assert.match(bitWidthCaveat(2, DEFAULT_TOLERANCES[2]) ?? '', /about 32 % error, above the 20 % tolerance/);
  assert.equal(bitWidthCaveat(4, DEFAULT_TOLERANCES[4]), undefined);
  assert.equal(bitWidthCaveat(8, DEFAULT_TOLERANCES[8]), undefined);
  // A tolerance raised by the user above the typical error: no warning.
  assert.equal(bitWidthCaveat(2, 0.4), undefined);
});

test('a failed 2-bit verdict says what to try instead; a passing one says nothing', () => {
  const a = failureAdvice({ bits: 2, pass: false, tolerance: 0.2 });
  assert.match(a ?? '', /every weight fails by design\. Try 4 bits/);
  assert.match(a ?? '', /--tolerance 2=0\.\d\d/);
  const tol = Number(/--tolerance 2=(0\.\d\d)/.exec(a ?? '')?.[1]);
  assert.ok(tol > 0.32, `the suggested tolerance ${tol} accepts the typical 32 %`);
  assert.equal(failureAdvice({ bits: 2, pass: true, tolerance: 0.2 }), undefined);
  assert.match(
    failureAdvice({ bits: 4, pass: false, group_size: 64, mode: 'minmax', tolerance: 0.1 }) ?? '',
    /--group-size 32.*--mode optimized.*8/,
  );
});

test('report tabs are titled with the model and the bits (issue 15 item 5)', () => {
  const r4 = normalizeReport({ model: 'tiny-llama', bits: 4, weights: [] });
  const r2 = normalizeReport({ model: 'tiny-llama', bits: 2, weights: [] });
  assert.equal(reportTitle(r4), 'Accuracy: tiny-llama q4');
  assert.notEqual(reportTitle(r4), reportTitle(r2));
  assert.equal(reportTitle({ model: 'm', bits: null }), 'Accuracy: m');
});
