/**
 * Drops as our server reports them, read from its JSON (pino) log: one warn
 * line per drop episode ("slow player: dropping to the next keyframe") and,
 * at info level, one line per player that leaves with drops ("player dropped
 * frames", with the count). Lines before `since` (epoch ms) are ignored.
 */
import { readFileSync } from 'node:fs';

export interface ServerDrops {
  /** drop episodes (slow player started dropping) */
  episodes: number;
  /** frames dropped, summed over players that left; null when the log level hid those lines */
  frames: number | null;
}

export function readServerDrops(file: string, since: number): ServerDrops | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let episodes = 0;
  let frames = 0;
  let frameLines = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('{') || !line.includes('dropp')) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof o !== 'object' || o === null) continue;
    const rec = o as Record<string, unknown>;
    const time = rec['time'];
    if (typeof time === 'number' && time < since) continue;
    const msg = typeof rec['msg'] === 'string' ? rec['msg'] : '';
    const dropped = rec['dropped'];
    if (msg.startsWith('slow player')) episodes++;
    else if (msg.includes('dropped frames') && typeof dropped === 'number') {
      frames += dropped;
      frameLines++;
    }
  }
  return { episodes, frames: frameLines > 0 || episodes === 0 ? frames : null };
}
