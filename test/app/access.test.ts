import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessModule, normalizeAddress } from '../../src/app/access.js';
import type { AppModule, PlayContext, PublishContext, SessionInfo } from '../../src/app/chain.js';
import type { AccessAction, AccessKind, AccessRule } from '../../src/config/types.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { memoryLogger, silentLogger, type Logger } from '../../src/core/log.js';

function session(remoteAddress: string, log: Logger = silentLogger()): SessionInfo {
  return { id: '1', protocol: 'rtmp', remoteAddress, app: 'live', query: '', tcUrl: 'rtmp://h/live', flashVer: 'FMLE/3.0', swfUrl: '', pageUrl: '', log };
}

function rule(action: AccessAction, kind: AccessKind, address: string): AccessRule {
  return { action, kind, address };
}

function moduleOf(rules: AccessRule[]): AppModule {
  const m = accessModule(rules);
  assert.ok(m !== undefined);
  return m;
}

/** 'allowed' when the module step called next(), else the refusal's code */
async function outcome<C>(step: (ctx: C, next: () => Promise<void>) => Promise<void>, ctx: C): Promise<string> {
  let called = false;
  try {
    await step(ctx, async () => {
      called = true;
    });
  } catch (e) {
    assert.equal(called, false);
    return isServerError(e) ? e.code : `unexpected ${String(e)}`;
  }
  assert.equal(called, true);
  return 'allowed';
}

function tryPublish(m: AppModule, addr: string, log?: Logger): Promise<string> {
  const ctx: PublishContext = { session: session(addr, log), name: 's', query: '', type: 'live' };
  return outcome(m.publish!.bind(m), ctx);
}

function tryPlay(m: AppModule, addr: string): Promise<string> {
  const ctx: PlayContext = { session: session(addr), name: 's', query: '', start: -2, duration: -1 };
  return outcome(m.play!.bind(m), ctx);
}

const DENIED = ErrorCode.Refused;

test('no rules: no module', () => {
  assert.equal(accessModule([]), undefined);
});

test('first matching rule wins, in order', async () => {
  const m = moduleOf([rule('allow', 'publish', '127.0.0.1'), rule('deny', 'publish', 'all')]);
  assert.equal(await tryPublish(m, '127.0.0.1'), 'allowed');
  assert.equal(await tryPublish(m, '127.0.0.2'), DENIED);
  // the reverse order denies everyone
  const r = moduleOf([rule('deny', 'publish', 'all'), rule('allow', 'publish', '127.0.0.1')]);
  assert.equal(await tryPublish(r, '127.0.0.1'), DENIED);
});

test('no matching rule allows', async () => {
  const m = moduleOf([rule('deny', 'publish', '10.0.0.1')]);
  assert.equal(await tryPublish(m, '10.0.0.2'), 'allowed');
  assert.equal(await tryPublish(m, '10.0.0.1'), DENIED);
});

test('IPv4 CIDR', async () => {
  const m = moduleOf([rule('allow', 'publish', '192.168.1.0/24'), rule('deny', 'publish', 'all')]);
  assert.equal(await tryPublish(m, '192.168.1.77'), 'allowed');
  assert.equal(await tryPublish(m, '192.168.1.255'), 'allowed');
  assert.equal(await tryPublish(m, '192.168.2.1'), DENIED);
  // low bits in the rule are ignored, like nginx
  const lb = moduleOf([rule('deny', 'publish', '10.1.2.3/8')]);
  assert.equal(await tryPublish(lb, '10.200.0.1'), DENIED);
  assert.equal(await tryPublish(lb, '11.0.0.1'), 'allowed');
});

test('IPv6 addresses and CIDR', async () => {
  const m = moduleOf([rule('allow', 'publish', '::1'), rule('allow', 'publish', '2001:db8::/32'), rule('deny', 'publish', 'all')]);
  assert.equal(await tryPublish(m, '::1'), 'allowed');
  assert.equal(await tryPublish(m, '2001:db8:abcd::42'), 'allowed');
  assert.equal(await tryPublish(m, '2001:db9::1'), DENIED);
  assert.equal(await tryPublish(m, 'fe80::1%eth0'), DENIED);
  // an IPv6 rule does not match an IPv4 client
  assert.equal(await tryPublish(m, '127.0.0.1'), DENIED);
});

test('IPv4-mapped IPv6 remote addresses match IPv4 rules', async () => {
  const m = moduleOf([rule('allow', 'publish', '127.0.0.1'), rule('allow', 'publish', '10.0.0.0/8'), rule('deny', 'publish', 'all')]);
  assert.equal(await tryPublish(m, '::ffff:127.0.0.1'), 'allowed');
  assert.equal(await tryPublish(m, '::FFFF:10.9.8.7'), 'allowed');
  assert.equal(await tryPublish(m, '::ffff:11.0.0.1'), DENIED);
  // an IPv6 rule written for mapped addresses still matches them
  const v6 = moduleOf([rule('deny', 'publish', '::ffff:10.0.0.0/104')]);
  assert.equal(await tryPublish(v6, '::ffff:10.1.1.1'), DENIED);
  assert.equal(await tryPublish(v6, '::ffff:11.1.1.1'), 'allowed');
  assert.deepEqual(normalizeAddress('::ffff:1.2.3.4'), { address: '1.2.3.4', family: 'ipv4', mapped: '::ffff:1.2.3.4' });
});

test('`all` matches everything, an unknown address matches only `all`', async () => {
  const m = moduleOf([rule('deny', 'play', 'all')]);
  assert.equal(await tryPlay(m, '1.2.3.4'), DENIED);
  assert.equal(await tryPlay(m, '::1'), DENIED);
  assert.equal(await tryPlay(m, '?'), DENIED);
  const n = moduleOf([rule('deny', 'publish', '0.0.0.0/0')]);
  assert.equal(await tryPublish(n, '?'), 'allowed');
  assert.equal(await tryPublish(n, '8.8.8.8'), DENIED);
});

test('publish and play rules are independent', async () => {
  const m = moduleOf([rule('deny', 'publish', 'all'), rule('allow', 'play', '10.0.0.1'), rule('deny', 'play', 'all')]);
  assert.equal(await tryPublish(m, '10.0.0.1'), DENIED);
  assert.equal(await tryPlay(m, '10.0.0.1'), 'allowed');
  assert.equal(await tryPlay(m, '10.0.0.2'), DENIED);
  const p = moduleOf([rule('deny', 'play', 'all')]);
  assert.equal(await tryPublish(p, '10.0.0.1'), 'allowed');
});

test('a refusal is logged at info with the address', async () => {
  const log = memoryLogger();
  const m = moduleOf([rule('deny', 'publish', '1.2.3.0/24')]);
  const ctx: PublishContext = { session: session('::ffff:1.2.3.4', log), name: 's', query: '', type: 'live' };
  await assert.rejects(
    m.publish!(ctx, async () => {}),
    (e: unknown) => isServerError(e, ErrorCode.Refused) && e.message === 'publish from 1.2.3.4 denied by access rules',
  );
  const entry = log.entries.find((e) => e.msg === 'publish from 1.2.3.4 denied by access rules');
  assert.equal(entry?.level, 'info');
  assert.equal(entry.fields['rule'], 'deny publish 1.2.3.0/24');
});

test('invalid rules are rejected when the module is built', () => {
  assert.throws(() => accessModule([rule('deny', 'publish', 'example.com')]), (e: unknown) => isServerError(e, ErrorCode.ConfigBadValue));
  assert.throws(() => accessModule([rule('deny', 'publish', '10.0.0.0/33')]), (e: unknown) => isServerError(e, ErrorCode.ConfigBadValue));
  assert.throws(() => accessModule([rule('deny', 'publish', '::/129')]), (e: unknown) => isServerError(e, ErrorCode.ConfigBadValue));
});
