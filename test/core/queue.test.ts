import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Queue } from '../../src/core/queue.js';

test('Queue: FIFO order and length across compactions', () => {
  const q = new Queue<number>();
  assert.equal(q.shift(), undefined);
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 3000; i++) q.push(next++);
    for (let i = 0; i < 2500; i++) assert.equal(q.shift(), expect++);
    assert.equal(q.length, next - expect);
  }
  while (q.length > 0) assert.equal(q.shift(), expect++);
  assert.equal(expect, next);
  q.push(1);
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
});

test('Queue: shifting a million items is linear (Array.shift on a large array is not)', () => {
  const q = new Queue<object>();
  for (let i = 0; i < 1_000_000; i++) q.push({ i });
  const t0 = Date.now();
  let n = 0;
  while (q.shift() !== undefined) n++;
  assert.equal(n, 1_000_000);
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
});
