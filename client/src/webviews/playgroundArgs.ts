// The command line of one playground generation (pure: no vscode import, unit-tested).
import type { PlaygroundRequest, PlaygroundSide } from '../../../server/src/protocol';

/** The argv of `apl-quant run` for one side of a request . */
export function runArgs(cli: string, manifest: string, r: PlaygroundRequest, side: PlaygroundSide): string[] {
  const a = [cli, 'run', manifest, '--prompt', r.prompt, '--max-tokens', String(r.maxTokens)];
  a.push('--temperature', String(r.temperature), '--json');
  if (r.chat) a.push('--chat');
  if (r.chat && r.system) a.push('--system', r.system);
  if (side === 'float') a.push('--float');
  return a;
}
