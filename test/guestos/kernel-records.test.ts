/**
 * Kernel-reported faults from log lines in the kernel's own formats. The machine-check lines are the
 * ones a Debian 6.1 guest logged for QEMU's HMP `mce 0 1 0xb200000000000175 5 ...` (reference
 * transcript x86-mce-hmp); the others follow the 6.1 format strings.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kernelFaults } from '../../src/guestos/linux/kernel-records';
import { decodeMcStatus, describeMcaCode } from '../../src/guestos/linux/mce';
import type { PrintkRecord } from '../../src/guestos';

const rec = (text: string, seq = 0): PrintkRecord => ({ seq, tsNsec: 3_139_864_000n + BigInt(seq), level: 0, facility: 0, flags: 2, text });

describe('MCi_STATUS decode', () => {
  it('decodes the status QEMU injects for a fatal machine check', () => {
    const d = decodeMcStatus(0xb200000000000175n);
    assert.deepEqual(d.flags, ['VAL', 'UC', 'EN', 'PCC']);
    assert.equal(d.severity, 'critical');
    assert.equal(d.mcaCode, 0x175);
    assert.equal(d.description, 'cache hierarchy error: L1 data, evict');
  });
  it('grades by the decode: UC+AR critical, UC alone error, corrected warning', () => {
    assert.equal(decodeMcStatus(0xbd80000000000134n).severity, 'critical'); // VAL UC EN MISCV ADDRV S AR
    assert.equal(decodeMcStatus(0xbc00000000000134n).severity, 'error');
    assert.equal(decodeMcStatus(0x9000000000000175n).severity, 'warning');
    assert.deepEqual(decodeMcStatus(0xbd80000000000134n).flags, ['VAL', 'UC', 'EN', 'MISCV', 'ADDRV', 'S', 'AR']);
  });
  it('names MCA code classes', () => {
    assert.equal(describeMcaCode(0x0000), 'no error');
    assert.equal(describeMcaCode(0x0400), 'internal timer error');
    assert.equal(describeMcaCode(0x0134), 'cache hierarchy error: L0 data, data read');
    assert.equal(describeMcaCode(0x009f), 'memory controller error: read');
    assert.equal(describeMcaCode(0x0011), 'TLB error: L1 instruction');
  });
});

describe('kernel fault records', () => {
  it('builds one machine-check record from the mce lines, then the panic', () => {
    const lines = [
      'FORENSIC-GUEST-READY idle-27165-mx1u248s',
      'mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 1: b200000000000175',
      'mce: [Hardware Error]: RIP !INEXACT! 10:<ffffffff81a592eb> {native_safe_halt+0xb/0x10}',
      'mce: [Hardware Error]: TSC 2315b4041 ',
      'mce: [Hardware Error]: PROCESSOR 2:60fb1 TIME 1795956383 SOCKET 0 APIC 0 microcode 1000065',
      'mce: [Hardware Error]: Machine check: Processor Context Corrupt',
      'Kernel panic - not syncing: Fatal local machine check',
    ];
    const faults = kernelFaults(lines.map(rec));
    assert.deepEqual(faults.map((f) => f.kind), ['machine-check', 'panic']);
    const mc = faults[0]!.mce!;
    assert.equal(mc.bank, 1);
    assert.equal(mc.mcgStatus, 5n);
    assert.equal(mc.rip, 0xffffffff81a592ebn);
    assert.equal(mc.ripInexact, true);
    assert.equal(mc.ripSymbol, 'native_safe_halt+0xb/0x10');
    assert.equal(mc.tsc, 0x2315b4041n);
    assert.equal(mc.addr, undefined);
    assert.equal(mc.verdict, 'Processor Context Corrupt');
    assert.equal(faults[0]!.lines.length, 5);
    assert.equal(faults[0]!.severity, 'critical');
    assert.match(faults[0]!.summary, /bank 1: status 0xb200000000000175 \(VAL UC EN PCC; cache hierarchy error: L1 data, evict\), no address \(ADDRV clear\)/);
  });

  it('reads ADDR and MISC when the kernel printed them', () => {
    const f = kernelFaults([
      rec('mce: [Hardware Error]: CPU 1: Machine Check: 0 Bank 4: bc00000000000134'),
      rec('mce: [Hardware Error]: TSC 0 ADDR 1234000 MISC 8c '),
    ]);
    assert.equal(f[0]!.mce!.addr, 0x1234000n);
    assert.equal(f[0]!.mce!.misc, 0x8cn);
    assert.equal(f[0]!.severity, 'error');
  });

  it('knows the other faults by their kernel format', () => {
    const f = kernelFaults(
      [
        'I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2',
        'Buffer I/O error on dev vda1, logical block 0, lost async page write',
        'EXT4-fs error (device vda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0',
        'watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]',
        'watchdog: Watchdog detected hard LOCKUP on cpu 1',
        'INFO: task kworker/0:1:42 blocked for more than 120 seconds.',
        'Out of memory: Killed process 123 (stress) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0',
        'BUG: kernel NULL pointer dereference, address: 0000000000000000',
        'Oops: 0002 [#1] PREEMPT SMP NOPTI',
        'Uhhuh. NMI received for unknown reason 21 on CPU 0.',
        'EXT4-fs (vda1): mounted filesystem with ordered data mode',
      ].map(rec),
    );
    assert.deepEqual(
      f.map((x) => [x.kind, x.severity, x.device ?? '']),
      [
        ['io-error', 'error', 'vda'],
        ['io-error', 'error', 'vda1'],
        ['ext4-error', 'error', 'vda1'],
        ['soft-lockup', 'error', ''],
        ['hard-lockup', 'critical', ''],
        ['hung-task', 'warning', ''],
        ['oom-kill', 'error', ''],
        ['oops', 'error', ''],
        ['oops', 'error', ''],
        ['unknown-nmi', 'warning', ''],
      ],
    );
    assert.equal(f[6]!.summary, 'OOM killed process 123 (stress)');
  });
});
