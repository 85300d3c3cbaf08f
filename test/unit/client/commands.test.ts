// The command table, the handler registry and package.json agree: every registered command is contributed (with
// the same title and category), activates the extension, and nothing else is contributed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HANDLERS } from '../../../client/src/commands/index';
import { COMMANDS } from '../../../client/src/commands/table';
import { CommandIds } from '../../../server/src/protocol';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8'));

test('package.json contributes exactly the registered commands', () => {
  const contributed = (pkg.contributes.commands as { command: string; title: string; category?: string }[])
    .map((c) => `${c.command}|${c.category}: ${c.title}`)
    .sort();
  const registered = COMMANDS.map((c) => `${c.id}|${c.category}: ${c.title}`).sort();
  assert.deepEqual(contributed, registered);
});

test('every command id of the protocol is in the table, once, with a handler', () => {
  const ids = COMMANDS.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length, 'duplicate command in the table');
  assert.deepEqual([...ids].sort(), Object.values(CommandIds).sort());
  assert.deepEqual(Object.keys(HANDLERS).sort(), [...ids].sort());
});

test('every command activates the extension; the custom editor and the manifest language do too', () => {
  const events: string[] = pkg.activationEvents;
  for (const c of COMMANDS) assert.ok(events.includes(`onCommand:${c.id}`), `missing onCommand:${c.id}`);
  assert.ok(events.includes('onLanguage:apl-manifest'));
  assert.ok(events.includes('onCustomEditor:apl.npzInspector'));
  assert.ok(events.includes('onTaskType:apl-convert'), 'tasks.json conversions activate the task provider');
  assert.deepEqual(
    (pkg.contributes.taskDefinitions as { type: string }[]).map((t) => t.type),
    ['apl-convert'],
  );
});

test('menus refer only to contributed commands', () => {
  const known = new Set(COMMANDS.map((c) => c.id));
  for (const [where, entries] of Object.entries(
    (pkg.contributes.menus ?? {}) as Record<string, { command: string }[]>,
  )) {
    for (const e of entries) assert.ok(known.has(e.command as never), `${where} names unknown command ${e.command}`);
  }
});

test('the settings the client reads are contributed with defaults', () => {
  const props = pkg.contributes.configuration.properties as Record<string, { default: unknown }>;
  for (const key of [
    'apl.backend',
    'apl.convert.bits',
    'apl.convert.groupSize',
    'apl.convert.symmetric',
    'apl.convert.outputFolder',
  ]) {
    assert.ok(props[key], `${key} not contributed`);
    assert.notEqual(props[key].default, undefined, `${key} has no default`);
  }
  assert.equal(props['apl.backend'].default, 'auto');
});

test('the vscode engine range is no newer than @types/vscode (the test VS Code must accept it)', () => {
  const engine = String(pkg.engines.vscode).replace(/^\^/, '');
  assert.equal(engine, pkg.devDependencies['@types/vscode']);
});
