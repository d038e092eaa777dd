import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

/** One webhook request: its path and its form fields (the POST body, or the query of a GET). */
export interface HookCall {
  readonly path: string;
  readonly params: URLSearchParams;
}

/**
 * A webhook backend on 127.0.0.1 that records every request; `status` picks
 * each answer (default 200). Closed in t.after.
 */
export async function hookServer(t: TestContext, status: (call: HookCall) => number = () => 200): Promise<{ readonly url: string; readonly calls: HookCall[] }> {
  const calls: HookCall[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const [path = '', query = ''] = (req.url ?? '').split('?', 2);
      const call: HookCall = { path, params: new URLSearchParams(body !== '' ? body : query) };
      calls.push(call);
      res.writeHead(status(call)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}
