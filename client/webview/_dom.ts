// Shared by the webview bundles (browser side; no Node APIs): the VS Code webview API, a tiny DOM builder, and
// colours taken from VS Code's theme variables (applied through CSSOM, which a strict CSP allows).

export interface VsCodeApi<S> {
  postMessage(message: unknown): void;
  getState(): S | undefined;
  setState(state: S): void;
}
declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

/** The webview API; outside VS Code (render tests) a stand-in that records posted messages on `window`. */
export function vscodeApi<S>(): VsCodeApi<S> {
  if (typeof acquireVsCodeApi === 'function') return acquireVsCodeApi<S>();
  const w = window as unknown as { __posted?: unknown[]; __state?: S };
  w.__posted = [];
  return {
    postMessage: (m) => w.__posted!.push(m),
    getState: () => w.__state,
    setState: (s) => {
      w.__state = s;
    },
  };
}

type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;
type Child = Node | string | number | null | undefined | false;

function apply(el: Element, attrs: Attrs | undefined, children: Child[]): void {
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === false) continue;
      if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

/** `h('td', { class: 'num' }, '1.5')`. Attribute `style` must not be used (CSP): set `el.style` instead. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: Attrs,
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag) as SVGElementTagNameMap[K];
  apply(el, attrs, children);
  return el;
}

/** A chart's vertical axis title: rotated, at x = 10, centred on a plot of height H from y = top. */
export function yAxisLabel(top: number, H: number, text: string): SVGTextElement {
  const y = top + H / 2;
  return s('text', { class: 'label axis', x: 10, y, transform: `rotate(-90 10 ${y})`, 'text-anchor': 'middle' }, text);
}

/**
 * A bar chart's svg: it fills the panel's width (the viewBox W × height scales), never narrower than W pixels (set
 * through the CSSOM: the page's CSP forbids inline style attributes).
 */
export function chartSvg(W: number, height: number, label: string, attrs: Attrs = {}): SVGSVGElement {
  const svg = s('svg', {
    class: 'chart',
    ...attrs,
    width: '100%',
    preserveAspectRatio: 'none',
    height,
    viewBox: `0 0 ${W} ${height}`,
    role: 'img',
    'aria-label': label,
  });
  svg.style.minWidth = `${W}px`;
  return svg;
}

/**
 * A heat colour for t in [0, 1]: the theme's chart colour mixed into the editor background (so it reads in light,
 * dark and high-contrast themes alike).
 */
export function heat(t: number, colour = '--vscode-charts-red'): string {
  const p = Math.round(Math.max(0, Math.min(1, t)) * 100);
  return `color-mix(in srgb, var(${colour}) ${p}%, var(--vscode-editor-background))`;
}

/** Resolves a CSS colour expression (e.g. a theme variable) to what canvas accepts, via a probe element. */
export function resolveColour(expr: string): string {
  const probe = document.createElement('span');
  probe.style.color = expr;
  probe.style.display = 'none';
  document.body.append(probe);
  const c = getComputedStyle(probe).color;
  probe.remove();
  return c || '#888';
}

/** Parses `rgb(a, b, c)` / `rgba(...)` / `color(srgb r g b)` into 0..255 channels. */
export function rgbOf(css: string): [number, number, number] {
  const m = /rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(css);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  const c = /color\(srgb\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(css);
  if (c) return [Number(c[1]) * 255, Number(c[2]) * 255, Number(c[3]) * 255];
  return [128, 128, 128];
}

/** A histogram as an SVG bar chart (counts per bin), with min / max labels under it. */
export function histogramSvg(
  hist: { min: number; max: number; counts: number[] },
  fmt: (v: number) => string,
  cls = 'histogram',
): SVGSVGElement {
  const W = 320;
  const H = 120;
  const pad = 16;
  const n = hist.counts.length;
  const peak = Math.max(1, ...hist.counts);
  const bw = W / n;
  const svg = s('svg', { class: cls, viewBox: `0 0 ${W} ${H + pad}`, role: 'img', 'aria-label': 'histogram' });
  hist.counts.forEach((c, i) => {
    const bh = (c / peak) * H;
    const lo = hist.min + ((hist.max - hist.min) * i) / n;
    const hi = hist.min + ((hist.max - hist.min) * (i + 1)) / n;
    svg.append(
      s(
        'rect',
        { class: 'bar', x: i * bw, y: H - bh, width: Math.max(0.5, bw - 0.5), height: bh },
        s('title', {}, `${fmt(lo)} … ${fmt(hi)}: ${c}`),
      ),
    );
  });
  svg.append(s('line', { class: 'axis', x1: 0, y1: H, x2: W, y2: H }));
  svg.append(s('text', { class: 'label', x: 0, y: H + 12 }, fmt(hist.min)));
  svg.append(s('text', { class: 'label', x: W, y: H + 12, 'text-anchor': 'end' }, fmt(hist.max)));
  return svg;
}
