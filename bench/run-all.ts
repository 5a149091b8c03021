/**
 * Runs every benchmark in bench/, one after another, each in its own process so none inherits
 * another's heap or threads. Each prints its own table comparing vmpm with the obvious alternative
 * measured in the same run. Heavy (several minutes): run on an idle machine.
 *
 *   npm run bench                 # all of them
 *   npm run bench -- capture diff # only these
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const BENCHES: Array<{ name: string; script: string; what: string }> = [
  { name: 'bundle-write', script: 'bundle-write.js', what: 'bundle writer vs zstd -3 -T2 on synthetic RAM images' },
  { name: 'capture', script: 'capture.js', what: 'vmpm capture vs dump-guest-memory + zstd -3 -T2 on a 1 GiB guest' },
  { name: 'snapshot', script: 'snapshot.js', what: 'snapshot capture of running 1 and 4 GiB guests: pause, QEMU downtime and setup, peak RSS' },
  { name: 'diff', script: 'diff.js', what: 'diff of two 4 GiB bundles from page digests' },
  { name: 'custody', script: 'custody.js', what: 'seal, unseal, sign, slim, redact of a 4 GiB bundle: time and peak RSS' },
  { name: 'watch', script: 'watch.js', what: 'event -> stop and event -> bundle latency of vmpm watch' },
];

function main(): number {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !BENCHES.some((b) => b.name === w));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')} (known: ${BENCHES.map((b) => b.name).join(', ')})\n`);
    return 2;
  }
  let failed = 0;
  for (const bench of BENCHES) {
    if (wanted.length > 0 && !wanted.includes(bench.name)) continue;
    process.stdout.write(`\n== ${bench.name}: ${bench.what}\n`);
    const r = spawnSync(process.execPath, [join(__dirname, bench.script)], { stdio: 'inherit' });
    if (r.status !== 0) {
      failed++;
      process.stdout.write(`== ${bench.name} failed (exit ${r.status ?? r.signal})\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
