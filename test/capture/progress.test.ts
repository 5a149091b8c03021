import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgressBar } from '../../src/cli/progress';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = { isTTY, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

test('progress bar: drawn on a TTY with bytes, rate and ETA, erased when done', () => {
  const { stream, text } = fakeStream(true);
  const bar = createProgressBar(stream);
  bar.update({ phase: 'memory', done: 512 * 1024 * 1024, total: 1024 * 1024 * 1024 });
  assert.match(text(), /memory \[#{14}\.{14}\]  50% 512 MiB\/1 GiB .*\/s ETA \d+s/);
  bar.done();
  assert.ok(text().endsWith('\r\x1b[K'));
});

test('progress bar: nothing at all when stderr is not a TTY (pipes, logs, CI)', () => {
  const { stream, text } = fakeStream(false);
  const bar = createProgressBar(stream);
  bar.update({ phase: 'memory', done: 1, total: 2 });
  bar.done();
  assert.equal(text(), '');
});
