import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BlockSection, ErrorsSection, Manifest } from '../../src/bundle/schema';
import { capture } from '../../src/capture';
import { launchBlockErrorGuest } from '../guest-extra/guests';
import { requireTools } from '../helpers/requirements';
import { runUntil, status, withBundle, withGuest } from './harness';

test('a real BLOCK_IO_ERROR (blkdebug EIO, rerror=stop): io-error run state, the error record and the io-status are in the bundle', { skip: requireTools('qemu-system-x86_64') }, async () => {
  await withGuest(() => launchBlockErrorGuest({ startPaused: true }), async ({ client, dir }) => {
    await runUntil(client, 'BLOCK_IO_ERROR');
    await client.waitForEvent('STOP', { timeoutMs: 5000 });
    const output = join(dir, 'eio.vmpm');
    await capture(client, { output, quiesce: 'stop-and-restore', memory: 'none' });
    await withBundle(output, async (reader) => {
      const manifest = await reader.json<Manifest>('manifest');
      assert.equal(manifest.runState.before.status, 'io-error');
      assert.match(manifest.runState.before.reason ?? '', /BLOCK_IO_ERROR/);
      // Never resumed: `cont` would only retry the failing read.
      assert.equal(manifest.runState.after.status, 'io-error');
      assert.deepEqual(manifest.actions, []);
      const records = (await reader.json<ErrorsSection>('errors')).records;
      const event = records.find((r) => r.source === 'event' && r.kind === 'block-io-error');
      assert.ok(event, JSON.stringify(records));
      assert.equal(event.device, 'ide1-hd0');
      assert.ok(records.some((r) => r.source === 'run-state' && r.kind === 'io-error'));
      assert.ok(records.some((r) => r.source === 'io-status' && r.device === 'ide1-hd0'));
      const block = await reader.json<BlockSection>('block');
      const bad = block.devices.find((d) => d.device === 'ide1-hd0');
      assert.equal(bad?.ioStatus, 'failed');
      assert.match(bad?.file ?? '', /^blkdebug:/);
      assert.equal(block.devices.find((d) => d.device === 'ide0-hd0')?.ioStatus, 'ok');
      assert.equal(reader.ranges().length, 0);
    });
    assert.equal((await status(client)).status, 'io-error');
  });
});
