// The convert bench's alternating rounds (bench/alternate.ts): the order reversed every other round, a warm-up run
// of each not counted, each round's ratio taken within the round, and the median.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alternate, describeRounds, median } from '../../../bench/alternate';

test('median: the middle value, or the mean of the two middle ones', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5]), 5);
  assert.ok(Number.isNaN(median([])));
});

test('alternate: one uncounted warm-up each, the order reversed every other round, ratios within a round', () => {
  const calls: string[] = [];
  let t = 0;
  // A slowly rising load: every call takes longer than the one before.
  const run = (name: string, base: number) => () => {
    calls.push(name);
    t += 1;
    return { wall: base * (1 + t / 100), cpu: base, rssMb: 1 };
  };
  const r = alternate([run('numpy', 3), run('convert', 1)], 4);
  assert.deepEqual(calls, [
    'numpy',
    'convert',
    'numpy',
    'convert',
    'convert',
    'numpy',
    'numpy',
    'convert',
    'convert',
    'numpy',
  ]);
  assert.equal(r.runs.length, 4);
  assert.equal(r.load.length, 4);
  // Round 1 ran numpy 3rd and convert 4th; round 2 convert 5th, numpy 6th.
  assert.equal(r.runs[0][0].wall, 3 * 1.03);
  assert.equal(r.runs[0][1].wall, 1 * 1.04);
  assert.equal(r.runs[1][1].wall, 1 * 1.05);
  assert.equal(r.runs[1][0].wall, 3 * 1.06);
  for (const [i, x] of r.ratio.entries()) assert.equal(x, r.runs[i][0].wall / r.runs[i][1].wall);
  const lines = describeRounds(['numpy', 'convert'], r);
  assert.equal(lines.length, 6);
  assert.match(lines[5], /median of 4: .* ratio \d+\.\d\d×/);
  const cold = alternate([run('a', 1), run('b', 1)], 1, false);
  assert.equal(cold.runs.length, 1);
  assert.deepEqual(calls.slice(-2), ['a', 'b'], 'no warm-up when asked');
});
