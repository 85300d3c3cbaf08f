// The inspector's virtualised value grid: asks the host for pages of 64 × 16 values as they scroll into view and
// writes each value to fit its cell (server/src/common/cells.ts), text members as their strings.

import { formatCell } from '../../server/src/common/cells';
import type { InspectorOperand, InspectorSlice, InspectorToHost, InspectorView } from '../../server/src/protocol';
import { h } from './_dom';

let postPage: (m: InspectorToHost) => void = () => {};
/** How the grid sends its page requests to the host. */
export function setPagePoster(post: (m: InspectorToHost) => void) {
  postPage = post;
}

// ------------------------------------------------------------------------------------------------------------
// Virtualised value grid

const RH = 22; // row height, px
const CW = 96; // column width, px
const RHW = 72; // row-header width, px
const BR = 64; // page rows
const BC = 16; // page cols
const MAX_PX = 8_000_000; // keep the scroll spacer under browsers' element-size limits

let nextRequest = 1;
export const pending = new Map<number, (values: (number | string)[]) => void>();

export class ValueGrid {
  readonly el: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly layer: HTMLDivElement;
  private readonly blocks = new Map<string, (number | string)[] | 'pending'>();
  private frame = 0;

  constructor(
    private readonly name: string,
    readonly view: InspectorView,
    readonly rows: number,
    readonly cols: number,
    /** The dtype the values were stored in (how many digits they hold); 'text' for strings. */
    private readonly dtype: string,
    /** A 2-D slice of an N-d member to page instead of its rows × cols grid; the other tensor of a 'diff'. */
    private readonly extra: { slice?: InspectorSlice; compare?: InspectorOperand } = {},
  ) {
    this.spacer = h('div', { class: 'grid-spacer' });
    this.layer = h('div', { class: 'grid-layer' });
    this.el = h('div', { class: 'grid', tabindex: 0, 'data-testid': `grid-${view}` }, this.spacer, this.layer);
    this.spacer.style.width = `${RHW + cols * CW}px`;
    this.spacer.style.height = `${Math.min(MAX_PX, (rows + 1) * RH)}px`;
    this.el.addEventListener('scroll', () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  /** Scrolls so that cell (r, c) is in view (at the top left when the grid can scroll that far). */
  goTo(r: number, c: number) {
    const row = Math.max(0, Math.min(this.rows - 1, r));
    const col = Math.max(0, Math.min(this.cols - 1, c));
    const full = (this.rows + 1) * RH;
    if (full <= MAX_PX) this.el.scrollTop = row * RH;
    else {
      const visible = Math.ceil(this.el.clientHeight / RH);
      this.el.scrollTop = Math.ceil((row / Math.max(1, this.rows - visible)) * (MAX_PX - this.el.clientHeight));
    }
    this.el.scrollLeft = col * CW;
    this.render();
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** First visible row; proportional when the spacer had to be capped. */
  private firstRow(visible: number): number {
    const full = (this.rows + 1) * RH;
    if (full <= MAX_PX) return Math.floor(this.el.scrollTop / RH);
    const range = MAX_PX - this.el.clientHeight;
    return Math.floor((this.el.scrollTop / Math.max(1, range)) * Math.max(0, this.rows - visible));
  }

  private value(r: number, c: number): number | string | undefined {
    const key = `${Math.floor(r / BR)}:${Math.floor(c / BC)}`;
    const b = this.blocks.get(key);
    if (b === undefined) {
      this.request(Math.floor(r / BR), Math.floor(c / BC));
      return undefined;
    }
    if (b === 'pending') return undefined;
    if (!b.length) return '⚠'; // the host could not read this page
    const row0 = Math.floor(r / BR) * BR;
    const col0 = Math.floor(c / BC) * BC;
    const w = Math.min(BC, this.cols - col0);
    return b[(r - row0) * w + (c - col0)];
  }

  private request(br: number, bc: number) {
    const key = `${br}:${bc}`;
    this.blocks.set(key, 'pending');
    const requestId = nextRequest++;
    pending.set(requestId, (values) => {
      this.blocks.set(key, values);
      this.schedule();
    });
    postPage({
      type: 'page',
      requestId,
      name: this.name,
      view: this.view,
      row: br * BR,
      rowCount: BR,
      col: bc * BC,
      colCount: BC,
      ...(this.extra.slice ? { slice: this.extra.slice } : {}),
      ...(this.extra.compare ? { compare: this.extra.compare } : {}),
    });
  }

  render() {
    const vh = this.el.clientHeight || 320;
    const vw = this.el.clientWidth || 640;
    const visRows = Math.ceil(vh / RH);
    const r0 = Math.min(this.firstRow(visRows), Math.max(0, this.rows - 1));
    const r1 = Math.min(this.rows, r0 + visRows);
    const c0 = Math.floor(this.el.scrollLeft / CW);
    const c1 = Math.min(this.cols, c0 + Math.ceil((vw - RHW) / CW) + 1);
    const top = this.el.scrollTop;
    const left = this.el.scrollLeft;
    const cells: HTMLElement[] = [];
    const place = (el: HTMLElement, x: number, y: number, w: number) => {
      el.style.transform = `translate(${x}px, ${y}px)`;
      el.style.width = `${w}px`;
      cells.push(el);
    };
    for (let c = c0; c < c1; c++)
      place(h('div', { class: 'cell head' }, String(c)), left + RHW + (c - c0) * CW, top, CW);
    for (let r = r0; r < r1; r++) {
      const y = top + (r - r0 + 1) * RH;
      place(h('div', { class: 'cell rowhead' }, String(r)), left, y, RHW);
      for (let c = c0; c < c1; c++) {
        const v = this.value(r, c);
        const text =
          v === undefined
            ? '…'
            : typeof v === 'string'
              ? this.dtype === 'text'
                ? v
                : formatCell(Number(v))
              : formatCell(v, this.dtype);
        place(
          h(
            'div',
            {
              class: v === undefined ? 'cell loading' : this.dtype === 'text' ? 'cell text' : 'cell',
              title: `[${r}, ${c}]`,
              ...(v === undefined ? {} : { 'data-value': String(v), 'aria-label': `[${r}, ${c}] = ${v}` }),
            },
            text,
          ),
          left + RHW + (c - c0) * CW,
          y,
          CW,
        );
      }
    }
    place(h('div', { class: 'cell corner' }, ''), left, top, RHW);
    this.layer.replaceChildren(...cells);
    this.el.setAttribute('data-rows', `${r0}-${r1}`);
  }
}
