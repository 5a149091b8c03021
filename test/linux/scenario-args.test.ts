import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scenarioCommandLine } from './scenario';

/** The hand-run scenario writes its temporary bundle beside OUT, whether OUT is relative or absolute. */
test('scenario command line: the temporary bundle sits beside an absolute OUT (not under the working directory)', () => {
  const abs = scenarioCommandLine(['sysrq', '/tmp/cases/panic.vmpm'], '/home/me/vmpm');
  assert.equal(abs?.tmpBundle, '/tmp/cases/panic.vmpm.tmp.vmpm');
  const rel = scenarioCommandLine(['mce', 'out/panic.vmpm', '--bzimage', '--memory', '5G', '--', 'log_buf_len=4M'], '/home/me/vmpm');
  assert.equal(rel?.tmpBundle, '/home/me/vmpm/out/panic.vmpm.tmp.vmpm');
  assert.deepEqual(rel?.options, { trigger: 'mce', kernel: 'bzImage', vmcoreinfo: true, memory: '5G', append: ['log_buf_len=4M'] });
  assert.equal(scenarioCommandLine(['reboot', 'x.vmpm']), undefined);
  assert.equal(scenarioCommandLine(['sysrq']), undefined);
});
