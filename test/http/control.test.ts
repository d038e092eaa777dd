import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/core/log.js';
import type { HttpLocation, HttpServerConfig } from '../../src/config/types.js';
import { HttpFrontend, type RtmpStatusSource, type StatConnectionSnapshot } from '../../src/http/server.js';

function loc(p: Partial<HttpLocation> & { path: string }): HttpLocation {
  return { root: undefined, alias: undefined, rtmpStat: false, rtmpControl: false, addHeaders: [], types: {}, exact: false, defaultType: 'text/plain', ...p };
}

function conn(id: string, app: string, addr: string, streams: StatConnectionSnapshot['streams']): StatConnectionSnapshot {
  return { id, remoteAddress: addr, app, flashVer: '', swfUrl: '', pageUrl: '', tcUrl: '', connectedAt: 0, bytesIn: 0, bytesOut: 0, streams };
}

/** live/s: publisher p1, players v1 v2 (v2 and p1 share an address); live/t: p2; app2/s: v3; 'gone' vanishes before the drop. */
function fakeSource(): RtmpStatusSource & { dropped: string[] } {
  const dropped: string[] = [];
  const connections = [
    conn('p1', 'live', '10.0.0.1', [{ streamId: 1, name: 's', role: 'publisher' }]),
    conn('v1', 'live', '10.0.0.2', [{ streamId: 1, name: 's', role: 'player' }]),
    conn('v2', 'live', '10.0.0.1', [{ streamId: 1, name: 's', role: 'player' }]),
    conn('p2', 'live', '10.0.0.3', [{ streamId: 1, name: 't', role: 'publisher' }]),
    conn('v3', 'app2', '10.0.0.4', [{ streamId: 1, name: 's', role: 'player' }]),
    conn('gone', 'live', '10.0.0.5', [{ streamId: 2, name: 's', role: 'player' }]),
    conn('idle', 'live', '10.0.0.6', []),
  ];
  return {
    dropped,
    snapshot: () => ({ startedAt: 0, now: 0, connections, streams: [] }),
    dropConnection: (id, reason) => {
      assert.match(reason, /control/);
      if (id === 'gone') return false;
      dropped.push(id);
      return true;
    },
  };
}

async function start(t: TestContext, source: RtmpStatusSource): Promise<string> {
  const cfg: HttpServerConfig = {
    listen: [{ host: '127.0.0.1', port: 0, proxyProtocol: false }],
    locations: [loc({ path: '/control', rtmpControl: true, addHeaders: [['X-Control', 'on']] })],
  };
  const fe = new HttpFrontend([cfg], { source, logger: silentLogger() });
  await fe.start();
  t.after(() => fe.stop());
  return `http://127.0.0.1:${fe.addresses()[0]!.port}`;
}

test('drop/publisher, drop/subscriber, drop/client: the right connections, the count as the body', async (t) => {
  const cases: [string, string[], string][] = [
    ['drop/publisher?app=live&name=s', ['p1'], '1'],
    ['drop/subscriber?app=live&name=s', ['v1', 'v2'], '2'],
    ['drop/subscriber?app=live&name=s&addr=10.0.0.1', ['v2'], '1'],
    ['drop/client?app=live&name=s', ['p1', 'v1', 'v2'], '3'],
    ['drop/client?app=live&name=s&addr=10.0.0.1', ['p1', 'v2'], '2'],
    ['drop/client?app=live&name=s&clientid=v1', ['v1'], '1'],
    ['drop/client?srv=0&app=live&name=s&clientid=v1&addr=10.0.0.9', [], '0'],
    ['drop/publisher?app=live&name=t', ['p2'], '1'],
    ['drop/publisher?app=live&name=nobody', [], '0'],
    ['drop/subscriber?app=nosuchapp&name=s', [], '0'],
    ['drop/subscriber?app=app2&name=s', ['v3'], '1'],
  ];
  for (const [q, ids, body] of cases) {
    const source = fakeSource();
    const base = await start(t, source);
    const r = await fetch(`${base}/control/${q}`);
    assert.equal(r.status, 200, q);
    assert.equal(r.headers.get('x-control'), 'on');
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(await r.text(), body, q);
    assert.deepEqual(source.dropped.sort(), ids, q);
  }
});

test('control: missing arguments 400, unknown filter 400, record without a recorder 204, redirect 501, unknown section 404', async (t) => {
  const source = fakeSource();
  const base = await start(t, source);
  const cases: [string, number, RegExp][] = [
    ['drop/publisher?name=s', 400, /Application not specified/],
    ['drop/publisher?app=&name=s', 400, /Application not specified/],
    ['drop/publisher?app=live', 400, /name not specified/],
    ['drop/subscriber?app=live&name=', 400, /name not specified/],
    ['drop/everyone?app=live&name=s', 400, /Undefined filter/],
    ['record/pause?app=live&name=s', 400, /Undefined record method/],
    ['record/stop?name=s', 400, /Application not specified/],
    ['redirect/publisher?app=live&name=s', 400, /newname not specified/],
    ['redirect/publisher?app=live&name=s&newname=', 400, /newname not specified/],
    ['redirect/everyone?app=live&newname=x', 400, /Undefined filter/],
    ['redirect/subscriber?app=live&newname=x%0d%0aX:%20y', 400, /control character/],
    ['redirect/publisher?app=live&name=s&newname=x', 501, /redirect: not available/],
    ['', 404, /unknown control section/],
    ['stats/x', 404, /unknown control section/],
  ];
  // a server that records nothing answers nothing (nginx-rtmp: no such recorder)
  const none = await fetch(`${base}/control/record/start?app=live&name=s&rec=r1`);
  assert.equal(none.status, 204);
  assert.equal(await none.text(), '');
  for (const [q, status, body] of cases) {
    const r = await fetch(`${base}/control/${q}`);
    assert.equal(r.status, status, q);
    assert.equal(r.headers.get('x-control'), null, 'no add_header on errors');
    assert.match(await r.text(), body, q);
  }
  const put = await fetch(`${base}/control/drop/publisher?app=live&name=s`, { method: 'PUT' });
  assert.equal(put.status, 405);
  await put.text();
  assert.deepEqual(source.dropped, [], 'nothing dropped by refused requests');
  // percent-encoded arguments are decoded
  const special = fakeSource();
  const base2 = await start(t, {
    ...special,
    snapshot: () => ({ startedAt: 0, now: 0, streams: [], connections: [conn('x1', 'my app', '::1', [{ streamId: 1, name: 'a&b', role: 'publisher' }])] }),
  });
  const r = await fetch(`${base2}/control/drop/publisher?app=my%20app&name=a%26b`, { method: 'POST' });
  assert.equal(await r.text(), '1');
  assert.deepEqual(special.dropped, ['x1']);
});

test('redirect/publisher|subscriber|client: the right connections and names, the count of switched streams as the body', async (t) => {
  const cases: [string, string[], string][] = [
    ['redirect/subscriber?app=live&name=s&newname=t', ['gone s->t', 'v1 s->t', 'v2 s->t'], '2'],
    ['redirect/subscriber?app=live&name=s&addr=10.0.0.1&newname=t', ['v2 s->t'], '1'],
    ['redirect/publisher?app=live&name=s&newname=s2', ['p1 s->s2'], '1'],
    ['redirect/client?app=live&name=s&clientid=v1&newname=x', ['v1 s->x'], '1'],
    ['redirect/client?app=live&name=s&newname=x%3Fk%3D1', ['gone s->x?k=1', 'p1 s->x?k=1', 'v1 s->x?k=1', 'v2 s->x?k=1'], '3'],
    // nginx-rtmp: no name = every stream, no app = every application
    ['redirect/subscriber?app=live&newname=n', ['gone *->n', 'v1 *->n', 'v2 *->n'], '2'],
    ['redirect/subscriber?name=s&newname=n', ['gone s->n', 'v1 s->n', 'v2 s->n', 'v3 s->n'], '3'],
    ['redirect/publisher?app=live&name=nobody&newname=n', [], '0'],
    [`redirect/subscriber?app=app2&name=s&newname=${'n'.repeat(300)}`, [`v3 s->${'n'.repeat(255)}`], '1'],
  ];
  for (const [q, calls, body] of cases) {
    const seen: string[] = [];
    const base = await start(t, {
      ...fakeSource(),
      redirectConnection: (id, role, name, newName) => {
        seen.push(`${id} ${name ?? '*'}->${newName}`);
        assert.ok(['publisher', 'subscriber', 'client'].includes(role));
        return id === 'gone' ? 0 : 1;
      },
    });
    const r = await fetch(`${base}/control/${q}`);
    assert.equal(r.status, 200, q);
    assert.equal(await r.text(), body, q);
    assert.deepEqual(seen.sort(), calls, q);
  }
});
