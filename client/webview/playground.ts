// Playground webview (browser side): a prompt, temperature and max tokens, chat mode with the model's template, and
// the output streamed token by token with the live tokens/s — the quantized model, and the float source beside it
// when the host says it is at hand. The host runs `apl-quant run … --json` in child processes and forwards the
// RunEvents (server/src/protocol.ts); Stop asks it to interrupt them.

import { formatBytes } from '../../server/src/common/format';
import type { HostToPlayground, PlaygroundSide, PlaygroundToHost, RunEvent } from '../../server/src/protocol';
import { h, vscodeApi } from './_dom';

const vscode = vscodeApi<unknown>();
const post = (m: PlaygroundToHost) => vscode.postMessage(m);
const root = document.getElementById('root')!;

interface Pane {
  el: HTMLElement;
  out: HTMLElement;
  stats: HTMLElement;
  tokens: number;
  started: number;
  running: boolean;
  text: string;
}
const panes = new Map<PlaygroundSide, Pane>();
let init: Extract<HostToPlayground, { type: 'init' }> | null = null;

const field = (label: string, control: HTMLElement) => h('label', { class: 'field' }, label, control);

function pane(side: PlaygroundSide): Pane {
  const out = h('pre', { class: 'output', 'data-testid': `output-${side}`, 'aria-live': 'polite' });
  const stats = h('div', { class: 'stats', 'data-testid': `stats-${side}` }, '');
  const el = h(
    'section',
    { class: 'pane', 'data-side': side },
    h('h2', {}, side === 'quantized' ? 'Quantized' : 'Float (source checkpoint)'),
    out,
    stats,
  );
  return { el, out, stats, tokens: 0, started: 0, running: false, text: '' };
}

function render(i: Extract<HostToPlayground, { type: 'init' }>): void {
  init = i;
  const prompt = h('textarea', { id: 'prompt', rows: 4, placeholder: 'Prompt' }, '');
  const temperature = h('input', { id: 'temperature', type: 'number', min: 0, max: 5, step: 0.1, value: '0.8' });
  const maxTokens = h('input', { id: 'max-tokens', type: 'number', min: 1, max: 4096, step: 1, value: '64' });
  const chat = h('input', { id: 'chat', type: 'checkbox', disabled: !i.chatTemplate });
  const system = h('input', { id: 'system', type: 'text', placeholder: 'System message (chat mode)' });
  const compare = h('input', {
    id: 'compare',
    type: 'checkbox',
    disabled: !i.floatAvailable,
    checked: i.floatAvailable,
  });
  const generate = h('button', { id: 'generate', type: 'submit' }, 'Generate');
  const stop = h('button', { id: 'stop', type: 'button', disabled: true }, 'Stop');
  const outputs = h('div', { class: 'outputs', 'data-testid': 'outputs' });
  const error = h('div', { class: 'error', 'data-testid': 'error', role: 'alert' });
  system.hidden = true;
  chat.addEventListener('change', () => {
    system.hidden = !chat.checked;
  });
  stop.addEventListener('click', () => post({ type: 'stop' }));
  const form = h(
    'form',
    { id: 'form' },
    prompt,
    system,
    h(
      'div',
      { class: 'controls' },
      field('Temperature', temperature),
      field('Max tokens', maxTokens),
      h('label', { class: 'check', title: i.chatTemplate ? '' : 'The model has no chat template' }, chat, 'Chat'),
      h(
        'label',
        { class: 'check', title: i.floatAvailable ? '' : 'The source checkpoint is not at hand' },
        compare,
        'Beside the float model',
      ),
      generate,
      stop,
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = Number(temperature.value);
    const n = Number(maxTokens.value);
    error.textContent = '';
    if (!prompt.value.trim()) {
      error.textContent = 'Write a prompt first.';
      return;
    }
    if (!Number.isFinite(t) || t < 0 || !Number.isInteger(n) || n < 1) {
      error.textContent = 'Temperature must be ≥ 0 and max tokens a positive integer.';
      return;
    }
    panes.clear();
    outputs.replaceChildren();
    const sides: PlaygroundSide[] = compare.checked && !compare.disabled ? ['quantized', 'float'] : ['quantized'];
    for (const s of sides) {
      const p = pane(s);
      panes.set(s, p);
      outputs.append(p.el);
    }
    outputs.classList.toggle('two', sides.length === 2);
    generate.disabled = true;
    stop.disabled = false;
    post({
      type: 'generate',
      prompt: prompt.value,
      temperature: t,
      maxTokens: n,
      chat: chat.checked,
      system: chat.checked && system.value ? system.value : undefined,
      compare: sides.length === 2,
    });
  });
  root.replaceChildren(
    h('h1', {}, 'Try ', h('span', { class: 'model' }, i.title)),
    h('p', { class: 'meta' }, i.manifest),
    form,
    error,
    outputs,
  );
  root.dataset.state = 'ready';
  if (i.request) {
    prompt.value = i.request.prompt;
    if (i.request.temperature !== undefined) temperature.value = String(i.request.temperature);
    if (i.request.maxTokens !== undefined) maxTokens.value = String(i.request.maxTokens);
    if (i.request.chat !== undefined && i.chatTemplate) chat.checked = i.request.chat;
    if (i.request.compare !== undefined && i.floatAvailable) compare.checked = i.request.compare;
    form.requestSubmit();
  }
}

function rate(p: Pane): string {
  const s = (performance.now() - p.started) / 1000;
  return p.tokens > 1 && s > 0 ? `${((p.tokens - 1) / s).toFixed(1)} tokens/s` : '';
}

function onEvent(side: PlaygroundSide, e: RunEvent): void {
  const p = panes.get(side);
  if (!p) return;
  if (e.type === 'prompt') p.stats.textContent = `prompt: ${e.ids.length} tokens`;
  else if (e.type === 'token') {
    if (p.tokens === 0) p.started = performance.now();
    p.tokens++;
    p.text += e.text;
    p.out.textContent = p.text;
    p.stats.textContent = `${p.tokens} tokens · ${rate(p)}`;
  } else if (e.type === 'done') {
    const stop = e.stop === 'max_tokens' ? 'max tokens' : e.stop;
    p.stats.textContent =
      `${e.generated_tokens} tokens · ${e.decode_tokens_per_s.toFixed(1)} tokens/s ` +
      `(prompt ${e.prompt_tokens} tokens, ${e.prefill_tokens_per_s.toFixed(1)} tokens/s) · ${e.backend} · ` +
      `${formatBytes(e.peak_rss_bytes)} peak · stopped: ${stop}`;
    p.stats.dataset.stop = e.stop;
  } else if (e.type === 'error') showError(side, e.message);
}

function showError(side: PlaygroundSide, message: string): void {
  const p = panes.get(side);
  const el = h('div', { class: 'error' }, message);
  if (p) p.el.append(el);
  else root.append(el);
}

function onExit(side: PlaygroundSide, code: number | null, error?: string): void {
  const p = panes.get(side);
  if (p) p.running = false;
  if (error) showError(side, error);
  else if (code !== 0 && code !== 130) showError(side, `the model process ended with code ${code}`);
  if ([...panes.values()].every((x) => !x.running)) {
    (document.getElementById('generate') as HTMLButtonElement | null)?.removeAttribute('disabled');
    (document.getElementById('stop') as HTMLButtonElement | null)?.setAttribute('disabled', '');
    post({
      type: 'rendered',
      what: 'playground',
      names: [...panes.keys()],
      detail: panes.get('quantized')?.text ?? '',
    });
  }
}

window.addEventListener('message', (ev: MessageEvent<HostToPlayground>) => {
  const m = ev.data;
  switch (m?.type) {
    case 'init':
      render(m);
      break;
    case 'started': {
      const p = panes.get(m.side);
      if (p) p.running = true;
      break;
    }
    case 'event':
      onEvent(m.side, m.event);
      break;
    case 'exit':
      onExit(m.side, m.code, m.error);
      break;
    case 'error':
      if (!init) root.dataset.state = 'ready';
      showError('quantized', m.message);
      (document.getElementById('generate') as HTMLButtonElement | null)?.removeAttribute('disabled');
      break;
  }
});
post({ type: 'ready' });
