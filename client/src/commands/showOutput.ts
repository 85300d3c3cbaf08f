import type { ClientContext } from '../context';

export default function showOutput(ctx: ClientContext): void {
  ctx.log.show(true);
}
