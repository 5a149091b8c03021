import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, sleep } from '../../src/watch/backoff';
import { RollingJournal, qemuTime } from '../../src/watch/journal';

const event = (i: number, data?: unknown) => ({
  event: `E${i}`,
  ...(data === undefined ? {} : { data }),
  timestamp: { seconds: 1795954701, microseconds: i },
  receivedAt: new Date(1795954701000),
});

describe('rolling journal', () => {
  it('keeps the newest events within its count and counts what it dropped', () => {
    const j = new RollingJournal({ maxEvents: 3 });
    for (let i = 0; i < 10; i++) j.add(event(i));
    assert.deepEqual(j.snapshot().map((e) => e.event), ['E7', 'E8', 'E9']);
    assert.equal(j.dropped, 7);
    assert.equal(j.length, 3);
  });
  it('stays bounded over a long run (100k events) in count and bytes', () => {
    const j = new RollingJournal({ maxEvents: 1000, maxBytes: 64 * 1024 });
    for (let i = 0; i < 100_000; i++) j.add(event(i, { device: 'ide1-hd0', reason: 'Input/output error', n: i }));
    assert.ok(j.length <= 1000);
    assert.ok(JSON.stringify(j.snapshot()).length < 96 * 1024, 'byte budget respected');
    assert.equal(j.snapshot().at(-1)?.event, 'E99999');
    assert.equal(j.dropped + j.length, 100_000);
  });
  it('replaces over-large event data with a note instead of keeping it', () => {
    const j = new RollingJournal();
    const e = j.add(event(1, { blob: 'x'.repeat(100_000) }));
    assert.match(JSON.stringify(e.data), /vmpmTruncated/);
  });
  it('records QEMU time with microseconds and when vmpm received the event', () => {
    const j = new RollingJournal();
    const e = j.add({ event: 'STOP', timestamp: { seconds: 1795954701, microseconds: 569876 }, receivedAt: new Date('2026-11-29T10:18:21.570Z') });
    assert.equal(e.time, qemuTime({ seconds: 1795954701, microseconds: 569876 }));
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.569876Z$/);
    assert.equal(e.receivedAt, '2026-11-29T10:18:21.570Z');
  });
  it('times an event that carried no QEMU timestamp (the client stores -1/-1) by when vmpm received it', () => {
    const j = new RollingJournal();
    const e = j.add({ event: 'STOP', timestamp: { seconds: -1, microseconds: -1 }, receivedAt: new Date('2026-11-29T10:18:21.570Z') });
    assert.equal(e.time, '2026-11-29T10:18:21.570Z');
    assert.equal(qemuTime({ seconds: 1795954701, microseconds: 1000000 }, new Date('2026-11-29T10:18:21.570Z')), '2026-11-29T10:18:21.570Z');
  });
});

describe('reconnect backoff', () => {
  it('doubles from the initial delay up to the cap, and starts over after reset', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next()), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(b.failures, 6);
    b.reset();
    assert.equal(b.next(), 100);
  });
  it('jitters within +-20 % and never beyond the cap', () => {
    const lo = new Backoff({ initialMs: 1000, maxMs: 1100, random: () => 0 });
    const hi = new Backoff({ initialMs: 1000, maxMs: 1100, random: () => 1 });
    assert.equal(lo.next(), 800);
    assert.equal(hi.next(), 1100);
  });
  it('sleep returns early when aborted', async () => {
    const ac = new AbortController();
    const t = performance.now();
    setTimeout(() => ac.abort(), 20);
    await sleep(5000, ac.signal);
    assert.ok(performance.now() - t < 1000);
  });
});
