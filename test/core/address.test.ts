import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { addressRulesCheck, addressSetMatcher } from '../../src/core/address.js';

test('addressRulesCheck: nginx semantics (first match wins, CIDR, IPv6, IPv4-mapped, all, no match allows)', () => {
  const check = addressRulesCheck(
    [
      { action: 'deny', address: '192.168.1.1' },
      { action: 'allow', address: '192.168.1.0/24' },
      { action: 'allow', address: '2001:db8::/32' },
      { action: 'deny', address: 'all' },
    ],
    'test',
  );
  assert.equal(check('192.168.1.1'), 'deny 192.168.1.1', 'the first matching line decides');
  assert.equal(check('192.168.1.2'), undefined);
  assert.equal(check('::ffff:192.168.1.2'), undefined, 'IPv4-mapped IPv6 is matched as IPv4');
  assert.equal(check('::ffff:192.168.1.1'), 'deny 192.168.1.1');
  assert.equal(check('2001:db8:1::5'), undefined);
  assert.equal(check('fe80::1%eth0'), 'deny all', 'a zone id is dropped, then "all" matches');
  assert.equal(check('10.0.0.1'), 'deny all');
  assert.equal(addressRulesCheck([{ action: 'deny', address: '10.0.0.0/8' }], 'test')('127.0.0.1'), undefined, 'no match: allowed');
  assert.throws(() => addressRulesCheck([{ action: 'deny', address: 'example.com' }], 'test'), (e: unknown) => isServerError(e, ErrorCode.ConfigBadValue));
});

test('addressSetMatcher: any pattern matches (set_real_ip_from)', () => {
  const trusted = addressSetMatcher(['10.0.0.0/8', '::1'], 'set_real_ip_from');
  assert.equal(trusted('10.1.2.3'), true);
  assert.equal(trusted('::ffff:10.1.2.3'), true);
  assert.equal(trusted('::1'), true);
  assert.equal(trusted('127.0.0.1'), false);
  assert.equal(trusted('?'), false, 'an unknown peer address is not trusted');
  assert.equal(addressSetMatcher(['all'], 'set_real_ip_from')('203.0.113.1'), true);
});
