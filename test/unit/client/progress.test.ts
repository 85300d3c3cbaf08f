import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  describeEvent,
  fixForError,
  LineSplitter,
  maskToken,
  ProgressTracker,
  parseEventLine,
} from '../../../client/src/convert/progress';
import { CommandIds, type ConvertEvent } from '../../../server/src/protocol';

test('parseEventLine accepts the converter events and nothing else', () => {
  assert.deepEqual(parseEventLine('{"type":"stage","stage":"quantize"}'), { type: 'stage', stage: 'quantize' });
  assert.deepEqual(parseEventLine('  {"type":"log","level":"warn","message":"x"}\r'), {
    type: 'log',
    level: 'warn',
    message: 'x',
  });
  assert.equal(parseEventLine('plain text'), undefined);
  assert.equal(parseEventLine('{"type":"nope"}'), undefined);
  assert.equal(parseEventLine('{"type":"stage"'), undefined);
  assert.equal(parseEventLine('[1,2]'), undefined);
  assert.equal(parseEventLine('{}'), undefined);
  assert.equal(parseEventLine('null'), undefined);
});

test('LineSplitter joins lines split across chunks and keeps the tail', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('{"a":'), []);
  assert.deepEqual(s.push('1}\n{"b":2}\r\n{"c"'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(s.push(':3}'), []);
  assert.deepEqual(s.flush(), ['{"c":3}']);
  assert.deepEqual(s.flush(), []);
});

test('LineSplitter never holds more than 1 MB of an unterminated line', () => {
  const s = new LineSplitter();
  const out = s.push('x'.repeat((1 << 20) + 5));
  assert.equal(out.length, 1);
  assert.equal(out[0].length, (1 << 20) + 5);
  assert.deepEqual(s.flush(), []);
});

test('ProgressTracker: monotonic overall percent across stages, message with tensor, percent and bytes', () => {
  const t = new ProgressTracker();
  const seen: number[] = [];
  const events: ConvertEvent[] = [
    { type: 'stage', stage: 'download' },
    { type: 'progress', stage: 'download', bytesDone: 50, bytesTotal: 100 },
    { type: 'progress', stage: 'download', bytesDone: 100, bytesTotal: 100 },
    { type: 'stage', stage: 'quantize' },
    { type: 'progress', stage: 'quantize', tensor: 2, tensors: 10, bytesDone: 1_500_000, bytesTotal: 3_000_000 },
    // a late, smaller figure never moves the bar back
    { type: 'progress', stage: 'download', bytesDone: 10, bytesTotal: 100 },
    { type: 'stage', stage: 'write' },
  ];
  let last = '';
  for (const e of events) {
    const u = t.update(e);
    assert.ok(u);
    seen.push(u.percent);
    last = e.type === 'progress' && e.stage === 'quantize' ? u.message : last;
  }
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], `percent went back at ${i}: ${seen}`);
  assert.equal(seen[1], 21); // download spans 2..40
  assert.equal(seen[2], 40);
  assert.equal(seen[4], 67); // quantize spans 40..94, half done
  assert.equal(last, 'quantize 3/10 · 50% · 1.43 MiB / 2.86 MiB');
  const done = t.update({
    type: 'result',
    npz: 'a.npz',
    manifest: 'a.json',
    report: 'r.json',
    pass: true,
    bitsPerWeight: 4.5,
    outputBytes: 1,
    sourceBytes: 2,
    seconds: 1,
  });
  assert.equal(done?.percent, 100);
  assert.equal(t.update({ type: 'log', level: 'info', message: 'x' }), undefined);
});

test('ProgressTracker tolerates a zero total', () => {
  const u = new ProgressTracker().update({ type: 'progress', stage: 'quantize', bytesDone: 0, bytesTotal: 0 });
  assert.equal(u?.percent, 40);
  assert.equal(u?.message, 'quantize · 0%');
});

test('describeEvent: terminal lines; progress events stay in the notification', () => {
  assert.equal(describeEvent({ type: 'progress', stage: 'write', bytesDone: 1, bytesTotal: 2 }), undefined);
  assert.equal(describeEvent({ type: 'error', code: 'auth', message: 'gated' }), 'error (auth): gated');
  assert.equal(describeEvent({ type: 'log', level: 'warn', message: 'slow' }), 'warn: slow');
  assert.match(
    describeEvent({ type: 'start', model: 'tiny', bits: 4, out: '/o', backend: 'cpu', version: '0.1.0' }) ?? '',
    /tiny to 4-bit \(backend cpu/,
  );
});

test('fixForError offers the token command for auth failures only', () => {
  assert.deepEqual(fixForError('auth'), { label: 'Set Hugging Face Token', command: CommandIds.setHfToken });
  assert.equal(fixForError('network'), undefined);
});

test('maskToken never shows the middle of a token', () => {
  assert.equal(maskToken('hf_abcdefghijklmnop'), 'hf_…op');
  assert.equal(maskToken('short'), '•••••');
});
