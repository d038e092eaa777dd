import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { startServer, type TestServer } from '../helpers/server.js';

export interface HlsServer extends TestServer {
  readonly httpBase: string | undefined;
}

/** A server with one application `live` with the given hls lines, and (optional) an http block. */
export async function startHlsServer(t: TestContext, appBody: string, httpBody?: string): Promise<HlsServer> {
  const text = `rtmp { server { listen 127.0.0.1:0; application live { live on; ${appBody} } } }\n${httpBody !== undefined ? `http { server { listen 127.0.0.1:0; ${httpBody} } }` : ''}`;
  const srv = await startServer(t, parseConfigText(text, 'hls-test.conf'));
  const port = srv.server.http?.addresses()[0]?.port;
  return { ...srv, httpBase: port === undefined ? undefined : `http://127.0.0.1:${port}` };
}

export interface ParsedPlaylist {
  readonly text: string;
  readonly mediaSeq: number;
  readonly target: number;
  readonly segments: { uri: string; duration: number; discont: boolean }[];
  readonly ended: boolean;
}

export function parsePlaylist(text: string): ParsedPlaylist {
  let mediaSeq = -1;
  let target = -1;
  let duration = -1;
  let discont = false;
  const segments: ParsedPlaylist['segments'] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) mediaSeq = Number(line.slice(22));
    else if (line.startsWith('#EXT-X-TARGETDURATION:')) target = Number(line.slice(22));
    else if (line.startsWith('#EXTINF:')) duration = Number.parseFloat(line.slice(8));
    else if (line === '#EXT-X-DISCONTINUITY') discont = true;
    else if (line !== '' && !line.startsWith('#')) {
      segments.push({ uri: line, duration, discont });
      discont = false;
    }
  }
  return { text, mediaSeq, target, segments, ended: text.includes('#EXT-X-ENDLIST') };
}

export async function readPlaylist(file: string): Promise<ParsedPlaylist | undefined> {
  try {
    return parsePlaylist(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Names of the files in dir with the extension (none when dir is missing). */
export async function filesOf(dir: string, ext: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => path.extname(f) === ext).sort();
  } catch {
    return [];
  }
}
