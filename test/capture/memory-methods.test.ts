import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { capture } from '../../src/capture';
import { launchBootSectorGuest } from '../../src/guest';
import { requireTools } from '../helpers/requirements';
import { runUntil, withBundle, withGuest } from './harness';

test('dump and pmemsave capture identical memory: same ranges, same digest for every page', { skip: requireTools('qemu-system-x86_64') }, async () => {
  await withGuest(() => launchBootSectorGuest({ startPaused: true }), async ({ client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const a = join(dir, 'dump.vmpm');
    const b = join(dir, 'pmemsave.vmpm');
    await capture(client, { output: a, quiesce: 'stop-and-restore', memory: 'dump' });
    await capture(client, { output: b, quiesce: 'stop-and-restore', memory: 'pmemsave' });
    await withBundle(a, (ra) =>
      withBundle(b, async (rb) => {
        assert.deepEqual(
          ra.ranges().map((r) => [r.start, r.length, r.name]),
          rb.ranges().map((r) => [r.start, r.length, r.name]),
        );
        const pagesA = [...ra.pages()];
        const pagesB = [...rb.pages()];
        assert.equal(pagesA.length, 16384);
        assert.equal(pagesA.length, pagesB.length);
        let differing = 0;
        pagesA.forEach((p, i) => {
          assert.equal(p.addr, pagesB[i]!.addr);
          if (!p.digest.equals(pagesB[i]!.digest)) differing++;
        });
        assert.equal(differing, 0);
        assert.ok(pagesA.some((p) => !p.zero));
      }),
    );
  });
});
