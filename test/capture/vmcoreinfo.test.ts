import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { capture } from '../../src/capture';
import { VMCOREINFO_TEXT, launchVmcoreinfoGuest } from '../guest-extra/guests';
import { requireTools } from '../helpers/requirements';
import { runUntil, withBundle, withGuest } from './harness';

const skip = requireTools('qemu-system-x86_64');

test('a guest-provided VMCOREINFO note (-device vmcoreinfo) is kept: its text in `vmcoreinfo`, the note verbatim in `elf-notes`', { skip }, async () => {
  await withGuest(() => launchVmcoreinfoGuest({ startPaused: true }), async ({ client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const output = join(dir, 'vmci.vmpm');
    await capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' });
    await withBundle(output, async (reader) => {
      assert.equal((await reader.raw('vmcoreinfo')).toString('utf8'), VMCOREINFO_TEXT);
      assert.ok((await reader.raw('elf-notes')).includes(Buffer.from(`VMCOREINFO\0\0${VMCOREINFO_TEXT}`, 'latin1')));
    });
  });
});

test('without -device vmcoreinfo there is no vmcoreinfo section, only the CPU notes', { skip }, async () => {
  await withGuest(() => launchVmcoreinfoGuest({ startPaused: true, withDevice: false }), async ({ client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const a = join(dir, 'a.vmpm');
    await capture(client, { output: a, quiesce: 'stop-and-restore', memory: 'dump' });
    await withBundle(a, async (reader) => {
      assert.equal(reader.has('vmcoreinfo'), false);
      assert.equal(reader.has('elf-notes'), true);
    });
  });
});
