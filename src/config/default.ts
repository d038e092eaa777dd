/**
 * The configuration `npm start` (no -c) runs: one RTMP server on port 1935
 * with one live application, written in the same nginx-rtmp syntax operators
 * use and read by the same loader.
 */
import { ErrorCode, serverError } from '../core/errors.js';
import { deepFreeze, parseConfigText } from './load.js';
import type { ServerConfig } from './types.js';

export const DEFAULT_CONFIG_SOURCE = '<embedded default>';

export const DEFAULT_CONFIG_TEXT = `# rtmp-server embedded default configuration (nginx-rtmp syntax)
rtmp {
    server {
        listen 1935;
        chunk_size 4096;
        # high-bitrate keyframes (4K, 20+ Mbit/s) pass nginx-rtmp's 1m default
        max_message 15m;

        application live {
            live on;
        }
    }
}
`;

/**
 * The embedded default configuration. `port` (0 = any free port, handy in
 * tests) replaces the port of every RTMP listen.
 */
export function defaultConfig(port?: number): ServerConfig {
  const cfg = parseConfigText(DEFAULT_CONFIG_TEXT, DEFAULT_CONFIG_SOURCE);
  if (port === undefined) return cfg;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw serverError(ErrorCode.ConfigBadValue, `${DEFAULT_CONFIG_SOURCE}: invalid port ${String(port)}`);
  }
  return deepFreeze({
    ...cfg,
    rtmp: cfg.rtmp.map((s) => ({ ...s, listen: s.listen.map((l) => ({ ...l, port })) })),
  });
}
