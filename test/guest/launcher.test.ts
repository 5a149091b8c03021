import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BOOT_SECTOR_ANSWERS, findQemu, launchBootSectorGuest, launchQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { VmpmError } from '../../src/util/errors';
import { requireTools } from '../helpers/requirements';

const skip = requireTools('qemu-system-x86_64');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('findQemu finds installed QEMU binaries and returns undefined for unknown ones', { skip }, () => {
  assert.match(findQemu('x86_64') ?? '', /qemu-system-x86_64$/);
  assert.equal(findQemu('no-such-arch'), undefined);
});

test('the boot-sector guest panics with the known register values and memory patterns', { skip }, async () => {
  const qemu = await launchBootSectorGuest({ startPaused: true });
  try {
    const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'] });
    try {
      await client.execute('cont');
      await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 15_000 });
      const regs = await client.hmp('info registers');
      for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) {
        // HMP prints real-mode registers with their 32-bit names: rax is shown as EAX.
        const m = new RegExp(`\\b${name.replace(/^r/, 'e').toUpperCase()}=([0-9a-f]+)`).exec(regs);
        assert.ok(m, `${name} in info registers`);
        assert.equal(BigInt(`0x${m[1]}`), value, name);
      }
      for (const p of BOOT_SECTOR_ANSWERS.patterns) {
        const expected = Buffer.concat(Array.from({ length: p.repeat ?? 1 }, () => p.bytes));
        const file = join(qemu.dir, `mem-${p.phys.toString(16)}.bin`);
        await client.execute('pmemsave', { val: p.phys, size: expected.length, filename: file });
        assert.ok(readFileSync(file).equals(expected), `pattern at 0x${p.phys.toString(16)}`);
      }
    } finally {
      await client.close();
    }
  } finally {
    await qemu.kill();
  }
});

test('kill() stops QEMU, removes the private temp dir, and can be called again', { skip }, async () => {
  const qemu = await launchQemu([], { startPaused: true });
  assert.ok(existsSync(qemu.qmpPath));
  assert.ok(isAlive(qemu.pid));
  await Promise.all([qemu.kill(), qemu.kill()]);
  await qemu.kill();
  assert.equal(existsSync(qemu.dir), false);
  assert.equal(isAlive(qemu.pid), false);
  const exit = await qemu.exited;
  assert.ok(exit.code !== null || exit.signal !== null);
});

test('a QEMU that dies before opening its QMP socket is reported with its stderr', { skip }, async () => {
  await assert.rejects(launchQemu(['-no-such-option-vmpm'], {}), (err: unknown) => {
    assert.ok(err instanceof VmpmError);
    assert.match(err.message, /QEMU exited before opening its QMP socket \(code 1/);
    assert.match(err.message, /no-such-option-vmpm/);
    return true;
  });
});
