// config.json, tokenizer_config.json and tokenizer.json as convert and run read them: the tiny-llama fixture's
// files edited field by field (and by keystrokes), with chat templates made hostile (huge ranges, deep recursion,
// undefined names). convert: describeSource (config.json → the manifest's model block); run: the model block →
// modelConfigFromManifest, loadTokenizer (both tokenizer files), then encode, decode and the chat template as
// `apl-quant run` uses them. Accepted, or refused with ConvertError / RunError on one line; never a hang.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ConvertError } from '../../../server/src/convert/errors';
import { describeSource } from '../../../server/src/convert/source';
import type { Manifest } from '../../../server/src/formats/manifest';
import { encodeSafetensors } from '../../../server/src/formats/safetensors';
import { modelConfigFromManifest, RunError } from '../../../server/src/run/config';
import { loadTokenizer } from '../../../server/src/run/load';
import { tempDir } from '../../helpers/tmp';
import { TINY_LLAMA } from '../lib/fixtures';
import { applyJsonOps, applyTextOps, hostileString, jsonOp, textOp } from '../lib/mutate';
import { acceptedOrRefused, type Target } from '../lib/target';

const read = (f: string) => readFileSync(join(TINY_LLAMA, f), 'utf8');
const CONFIG = JSON.parse(read('config.json'));
const TOKENIZER = JSON.parse(read('tokenizer.json'));
const TOK_CONFIG = {
  ...JSON.parse(read('tokenizer_config.json')),
  chat_template:
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}",
};
const TEMPLATES = [
  '{% for i in range(100000000) %}x{% endfor %}',
  '{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}x{% endfor %}{% endfor %}{% endfor %}',
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  "{{ 'x' * 100000000 }}",
  '{{ messages[0].content.upper() * 99999 }}',
  '{% set x = [] %}{% for i in range(10) %}{{ x.append(i) }}{% endfor %}',
  '{{ undefined_thing.x.y }}',
  '{% if %}',
  '{{ raise_exception("no") }}',
  '{{ messages | tojson }}',
  '{#',
  '',
];

interface Input {
  config: string;
  tokenizer: string;
  tokConfig: string;
  text: string;
  ids: number[];
}
const jsonEdited = (seed: unknown) =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(JSON.stringify(seed)) },
    {
      weight: 3,
      arbitrary: fc
        .array(jsonOp, { minLength: 1, maxLength: 4 })
        .map((ops) => JSON.stringify(applyJsonOps(seed, ops)) ?? ''),
    },
    {
      weight: 1,
      arbitrary: fc
        .array(textOp, { minLength: 1, maxLength: 3 })
        .map((ops) => applyTextOps(JSON.stringify(seed, null, 1), ops)),
    },
  );
const input: fc.Arbitrary<Input> = fc.record({
  config: jsonEdited(CONFIG),
  tokenizer: jsonEdited(TOKENIZER),
  tokConfig: fc.oneof(
    jsonEdited(TOK_CONFIG),
    fc.constantFrom(...TEMPLATES).map((t) => JSON.stringify({ ...TOK_CONFIG, chat_template: t })),
  ),
  text: fc.oneof(hostileString, fc.constantFrom('Hello world', '<s></s>[INST]', '\u{1F600}'.repeat(50))),
  ids: fc.array(fc.oneof(fc.nat({ max: 600 }), fc.constantFrom(-1, 1e9, 0.5)), { maxLength: 8 }),
});

let dir = '';
export const target: Target<Input> = {
  name: 'hf-config',
  describe:
    'config.json, tokenizer_config.json, tokenizer.json: describeSource, modelConfigFromManifest, loadTokenizer',
  arbitrary: () => input,
  async setup() {
    dir = tempDir('apl-fuzz-hfcfg-');
    writeFileSync(
      join(dir, 'model.safetensors'),
      encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: new Uint8Array(4) }]),
    );
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async check(x) {
    writeFileSync(join(dir, 'config.json'), x.config);
    writeFileSync(join(dir, 'tokenizer.json'), x.tokenizer);
    writeFileSync(join(dir, 'tokenizer_config.json'), x.tokConfig);
    const file = join(dir, 'config.json');
    await acceptedOrRefused(
      async () => {
        const info = describeSource({ dir, name: 'fuzz', source: dir, revision: null });
        await acceptedOrRefused(() => modelConfigFromManifest(info, file), [RunError], file);
      },
      [ConvertError],
      dir,
    );
    const manifestPath = join(dir, 'fuzz_manifest_q4.json');
    const m = {
      metadata: { tokenizer: 'tokenizer.json', tokenizer_config: 'tokenizer_config.json' },
    } as unknown as Manifest;
    await acceptedOrRefused(
      () => {
        const tok = loadTokenizer(manifestPath, m);
        if (!tok) return;
        // As `apl-quant run` uses it: the prompt encoded, generated ids decoded, the chat template (its errors are
        // wrapped by the run command; only a hang or a crash counts here).
        const ids = tok.encode(x.text, true);
        tok.decode(ids);
        try {
          tok.decode(x.ids.filter((i) => Number.isInteger(i) && i >= 0));
        } catch {}
        if (tok.chatTemplate) {
          try {
            tok.encodeChat([{ role: 'user', content: x.text }]);
          } catch {}
        }
      },
      // loadTokenizer names the file in its refusals; encode (an incomplete vocabulary) cannot, so no name is asked.
      [RunError],
    );
  },
  serialize: (x) => JSON.stringify(x),
};
