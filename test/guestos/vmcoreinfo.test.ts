/**
 * The VMCOREINFO parser on the real note of a Debian 6.1 amd64 guest (captured with -device vmcoreinfo,
 * KASLR on), and on hostile variants of it: each malformed input is one error that names the problem.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bufferPhysicalMemory, PageNotCapturedError, readU64, Vmcoreinfo, VmcoreinfoError, VmcoreinfoKeyError, vmcoreinfoFromBundle } from '../../src/guestos';
import { FIXTURES } from '../arch/fixtures';

const SAMPLE = readFileSync(join(FIXTURES, 'linux', 'vmcoreinfo-debian-6.1-amd64.txt'), 'latin1');

describe('VMCOREINFO parser', () => {
  it('reads every kind of value of a real Debian 6.1 note', () => {
    const info = Vmcoreinfo.parse(SAMPLE);
    assert.equal(info.osRelease, '6.1.0-57-amd64');
    assert.equal(info.buildId, '6a2b4ac77585b8cf102cba771300e573c8489b69');
    assert.equal(info.pageSize, 4096);
    assert.equal(info.symbol('prb'), 0xffffffffb50643e0n);
    assert.equal(info.symbol('_stext'), 0xffffffffb3600000n);
    assert.equal(info.number('phys_base'), -723517440n);
    assert.equal(info.number('PAGE_BUDDY_MAPCOUNT_VALUE'), -129n);
    assert.equal(info.offset('printk_ringbuffer.text_data_ring'), 48);
    assert.equal(info.size('printk_info'), 88);
    assert.equal(info.length('printk_info_device'), 48);
    assert.equal(info.kernelOffset, 0x32600000n);
    assert.equal(info.crashTime, undefined, 'this note was taken before a crash');
    assert.equal(info.keys().length, SAMPLE.trim().split('\n').length);
    assert.equal(info.symbolIfAny('log_buf'), undefined);
  });

  it('names the missing key', () => {
    const info = Vmcoreinfo.parse(SAMPLE);
    assert.throws(() => info.symbol('log_buf'), (e: unknown) => e instanceof VmcoreinfoKeyError && e.key === 'SYMBOL(log_buf)' && /VMCOREINFO SYMBOL\(log_buf\) is missing/.test(e.message));
    assert.throws(() => info.offset('printk_log.ts_nsec'), /OFFSET\(printk_log\.ts_nsec\) is missing/);
  });

  it('takes NUL padding and a CRASHTIME line, and arm64-style 0x numbers', () => {
    const info = Vmcoreinfo.parse(Buffer.concat([Buffer.from(`${SAMPLE}CRASHTIME=1795956383\nNUMBER(kimage_voffset)=0xffffcaeb6ce00000\n`), Buffer.alloc(7)]));
    assert.equal(info.crashTime, 1795956383);
    assert.equal(info.number('kimage_voffset'), 0xffffcaeb6ce00000n);
  });

  const hostile: Array<[string, string, RegExp]> = [
    ['a line without =', `${SAMPLE}garbage\n`, /line \d+ is not KEY=VALUE/],
    ['a SYMBOL that is not hex', SAMPLE.replace('SYMBOL(prb)=ffffffffb50643e0', 'SYMBOL(prb)=zz'), /SYMBOL\(prb\)="zz" is not a valid SYMBOL value/],
    ['an absurd OFFSET', SAMPLE.replace('OFFSET(printk_info.seq)=0', 'OFFSET(printk_info.seq)=99999999999'), /OFFSET\(printk_info\.seq\)="99999999999" is not a valid OFFSET/],
    ['a negative SIZE', SAMPLE.replace('SIZE(prb_desc)=24', 'SIZE(prb_desc)=-24'), /SIZE\(prb_desc\)="-24"/],
    ['a key given twice with two values', `${SAMPLE}SYMBOL(prb)=ffffffff00000000\n`, /gives SYMBOL\(prb\) twice/],
    ['binary bytes', `${SAMPLE.slice(0, 100)}\x01\x02${SAMPLE.slice(100)}`, /non-printable byte 0x01/],
    ['bytes after the NUL', `${SAMPLE}\0\0xyz`, /after its NUL/],
    ['more than 64 KiB', SAMPLE.repeat(30), /more than the 65536/],
    ['nothing', '\0\0\0\0', /empty/],
    ['a PAGESIZE that is not a power of two', SAMPLE.replace('PAGESIZE=4096', 'PAGESIZE=4097'), /PAGESIZE="4097"/],
  ];
  for (const [what, text, message] of hostile) {
    it(`rejects ${what} in one line`, () => {
      assert.throws(
        () => Vmcoreinfo.parse(text),
        (e: unknown) => e instanceof VmcoreinfoError && message.test(e.message) && !e.message.includes('\n') && e.message.length < 200,
      );
    });
  }

  it('comes from a bundle section, or is undefined when the bundle has none', async () => {
    const bundle = (sections: Record<string, Buffer>) => ({
      path: 'x.vmpm',
      has: (n: string) => n in sections,
      raw: async (n: string) => sections[n]!,
    });
    assert.equal(await vmcoreinfoFromBundle(bundle({})), undefined);
    const info = await vmcoreinfoFromBundle(bundle({ vmcoreinfo: Buffer.from(SAMPLE) }));
    assert.deepEqual(info?.source, { kind: 'section', name: 'vmcoreinfo' });
    await assert.rejects(vmcoreinfoFromBundle(bundle({ vmcoreinfo: Buffer.from('x') })), /^VmcoreinfoError: x\.vmpm: section vmcoreinfo: VMCOREINFO line 1/);
  });
});

describe('guest physical memory', () => {
  const mem = bufferPhysicalMemory('sample', [
    { start: 0x1000n, data: Buffer.alloc(0x2000, 0x11) },
    { start: 0x3000n, data: Buffer.from('0123456789abcdef'.repeat(256)) },
  ]);
  it('reads across adjacent segments', async () => {
    const b = await mem.read(0x2ffcn, 8);
    assert.equal(b.toString('latin1'), '\x11\x11\x11\x110123');
    assert.equal(await readU64(mem, 0x3000n), Buffer.from('01234567').readBigUInt64LE(0));
    assert.equal(mem.has(0x1000n, 0x3000), true);
  });
  it('names the missing page instead of returning zeros', async () => {
    await assert.rejects(mem.read(0x3ff8n, 16), (e: unknown) => e instanceof PageNotCapturedError && e.page === 0x4000n && e.phys === 0x4000n);
    await assert.rejects(mem.read(0x500n, 16), /page 0x0 \(for 0x500\) is not captured in sample/);
    assert.equal(mem.has(0x4000n, 1), false);
  });
  it('refuses unbounded reads', async () => {
    await assert.rejects(mem.read(0x1000n, 64 * 1024 * 1024), /too large/);
  });
});
