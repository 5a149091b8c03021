import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpusFromStream } from '../../src/capture/stream-registers';
import { VmpmError } from '../../src/util/errors';

const REGS = { rip: 0x7c60n, rflags: 0x46n, rsp: 0x7c00n, cr0: 0x11n, cr3: 0n, efer: 0n, 'cs.selector': 8n, 'fs.base': 0n, 'gs.base': 0n, rax: 0xc0ffee01n };

test('registers from the stream: hex, mode, halted, source; what the stream lacks stays absent', () => {
  const s = cpusFromStream([{ index: 0, registers: REGS, halted: true }], undefined, [{ 'cpu-index': 0, 'qom-path': '/machine/unattached/device[0]', 'thread-id': 42 }]);
  assert.equal(s.source, 'migration-stream');
  const [cpu] = s.cpus;
  assert.equal(cpu!.mode, 'protected');
  assert.equal(cpu!.halted, true);
  assert.equal(cpu!.threadId, 42);
  assert.equal(cpu!.registers.rax, '0xc0ffee01');
  assert.equal(cpu!.registers.st0, undefined);
  assert.equal(cpu!.registers.rbx, undefined);
});

test('no decodable CPU state: one line that names the cause and the way out, never a bundle without registers', () => {
  const cases: Array<[Parameters<typeof cpusFromStream>[0], string | undefined, RegExp]> = [
    [undefined, 'migration stream ends without a vmdesc', /without a vmdesc/],
    [[], undefined, /no `cpu` device section/],
    [[{ index: 0, registers: { ...REGS, rip: undefined as unknown as bigint } }], undefined, /cpu 0 has no rip/],
  ];
  for (const [vmstate, why, pattern] of cases) {
    for (const c of vmstate ?? []) for (const k of Object.keys(c.registers)) if (c.registers[k] === undefined) delete c.registers[k];
    assert.throws(
      () => cpusFromStream(vmstate, why, []),
      (e: unknown) => e instanceof VmpmError && pattern.test(e.message) && /--memory-method dump/.test(e.message) && !e.message.includes('\n'),
    );
  }
  assert.throws(() => cpusFromStream([{ index: 0, registers: REGS }], undefined, [{ 'cpu-index': 0 }, { 'cpu-index': 1 }]), /1 cpu sections for 2 vCPUs/);
});
