import type { Command } from 'commander';
import { basename, dirname, resolve } from 'node:path';
import { capture, formatSummaryLine, type CaptureOptions, type RequestedMemoryMethod } from '../../capture';
import { describeLeftover, findLeftovers } from '../../capture/leftovers';
import { reportStaleClaims } from '../../capture/claim-report';
import type { MemoryMethod, QuiescePolicy } from '../../bundle/schema';
import { UsageError, VmpmError } from '../../util/errors';
import { createProgressBar } from '../progress';
import { abortOnSignals, exitCodeForSignal } from '../signals';
import { checkOutputPath } from '../output/write';
import { parseSmallInt } from '../output/args';
import { loadSigningKey, signFile } from '../../custody';
import { addTargetOptions, openSession, targetFrom, type TargetOptions } from './target';
import { isRemoteUri } from '../../libvirt';

interface CaptureCommandOptions extends TargetOptions {
  output: string;
  keepStopped?: boolean;
  stop: boolean;
  memory: boolean;
  memoryMethod: string;
  attach: string[];
  label?: string;
  force?: boolean;
  keepPartial?: boolean;
  level?: string;
  json?: boolean;
  signKey?: string;
}

export function quiescePolicyFrom(o: { keepStopped?: boolean; stop: boolean }): QuiescePolicy {
  if (o.keepStopped && !o.stop) throw new UsageError('--keep-stopped and --no-stop contradict each other; choose one');
  if (!o.stop) return 'no-stop';
  return o.keepStopped ? 'keep-stopped' : 'stop-and-restore';
}

/**
 * The memory method from --no-memory / --memory-method. `methodGiven` says whether the user typed
 * --memory-method (it has a default): asking for a method and for no memory at once is a contradiction
 * to point out, not one to resolve silently.
 */
export function memoryMethodFrom(o: { memory: boolean; memoryMethod: string }, methodGiven = false): MemoryMethod {
  if (o.memoryMethod !== 'dump' && o.memoryMethod !== 'pmemsave') {
    throw new UsageError(`--memory-method must be dump or pmemsave, got ${JSON.stringify(o.memoryMethod)}`);
  }
  if (!o.memory && methodGiven) throw new UsageError('--no-memory and --memory-method contradict each other; choose one');
  return o.memory ? o.memoryMethod : 'none';
}

/** capture's --memory-method: also `snapshot`, and `auto` (its default: snapshot for a running guest when QEMU can, else dump). */
export function captureMemoryMethodFrom(o: { memory: boolean; memoryMethod: string }, methodGiven = false): RequestedMemoryMethod {
  if (o.memoryMethod === 'snapshot' || o.memoryMethod === 'auto') {
    if (!o.memory && methodGiven) throw new UsageError('--no-memory and --memory-method contradict each other; choose one');
    return o.memory ? o.memoryMethod : 'none';
  }
  if (o.memoryMethod !== 'dump' && o.memoryMethod !== 'pmemsave') {
    throw new UsageError(`--memory-method must be auto, snapshot, dump or pmemsave, got ${JSON.stringify(o.memoryMethod)}`);
  }
  return memoryMethodFrom(o, methodGiven);
}

/** zstd level for the memory frames: 1 by default (DEFAULT_LEVEL, src/bundle/writer.ts says why); higher is slower, often smaller. */
export function levelFrom(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const level = parseSmallInt(text, '--level', 1);
  if (level > 9) throw new UsageError(`--level expects 1..9, got ${level}`);
  return level;
}

export function register(program: Command): void {
  const command = program
    .command('capture')
    .description('quiesce a QEMU guest and capture registers, memory map, RAM and error records into a bundle');
  addTargetOptions(command)
    .requiredOption('-o, --output <file>', 'bundle to write (e.g. case.vmpm)')
    .option('--keep-stopped', 'leave the guest stopped afterwards (the failover-safe state)')
    .option('--no-stop', 'do not stop a running guest (memory and registers may disagree; marked inconsistent)')
    .option('--no-memory', 'metadata only: no RAM contents (fast, small)')
    .option(
      '--memory-method <method>',
      'auto (snapshot for a running guest when QEMU can, else dump), snapshot (background snapshot: paused for milliseconds), dump (dump-guest-memory ELF; with --libvirt: virsh dump --memory-only) or pmemsave',
      'auto',
    )
    .option('--attach <file>', 'attach a file, e.g. the serial log (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--label <text>', 'free-text label stored in the manifest')
    .option('--force', 'overwrite an existing output file')
    .option('--keep-partial', 'on failure keep what was captured as <name>.partial.vmpm')
    .option('--level <n>', 'zstd level 1..9 for guest memory (default 1, the fastest; higher levels are slower and often smaller)')
    .option('--json', 'print the summary as JSON')
    .option('--sign-key <file>', 'sign the bundle as soon as it is written (SSHSIG, FILE.sig) with this OpenSSH Ed25519 key')
    .addHelpText(
      'after',
      `
Default policy: a running guest is stopped first, captured, then resumed; a guest that was already
paused, panicked or in io-error is left exactly as it was. vmpm never resets or kills a guest.

Examples:
  vmpm capture --qmp unix:/run/vm1.qmp -o vm1.vmpm
  vmpm capture --qmp /run/vm1.qmp -o vm1.vmpm --keep-stopped --attach /var/log/vm1-serial.log
  vmpm capture --qmp tcp:127.0.0.1:4444 -o meta.vmpm --no-memory --json
  vmpm capture --libvirt web1 -o web1.vmpm --keep-stopped
  vmpm capture --libvirt web1 --connect qemu+ssh://root@host1/system -o web1.vmpm --no-memory`,
    )
    .action(runCapture);
}

/** The action: every option and the output path checked, and the signing key loaded, before the guest is touched. */
async function runCapture(o: CaptureCommandOptions, cmd: Command): Promise<void> {
  const quiesce = quiescePolicyFrom(o);
  const memory = captureMemoryMethodFrom(o, cmd.getOptionValueSource('memoryMethod') === 'cli');
  const level = levelFrom(o.level);
  const target = targetFrom(o);
  if (target.kind === 'libvirt' && target.target.uri !== undefined && isRemoteUri(target.target.uri) && memory !== 'none') {
    // libvirtd writes the dump on its own host: vmpm's pipe is here. Refused before the guest is touched.
    throw new UsageError(`--connect ${target.target.uri} is another host: libvirt would write guest memory there, not into this bundle; add --no-memory, or run vmpm on that host`);
  }
  const output = resolve(o.output);
  // Checked before connecting (the bundle writer checks again, atomically): no guest is stopped for nothing.
  checkOutputPath(output, o.force === true);
  // A vmpm killed with SIGKILL could not clean up: say what it left (issue 13; see README "Hostile input").
  for (const l of findLeftovers(dirname(output))) process.stderr.write(`vmpm: warning: ${describeLeftover(l)}\n`);
  // The key is loaded (and a bad one refused) before the guest is touched.
  const signKey = o.signKey === undefined ? undefined : await loadSigningKey(o.signKey);
  if (signKey) checkOutputPath(`${output}.sig`, o.force === true, '--sign-key');
  // `cont` is allowed only when this policy may need it; the migration commands only for a background
  // snapshot (stop-and-restore, memory method auto or snapshot); nothing else state-changing ever is.
  const snapshot = target.kind === 'qmp' && quiesce === 'stop-and-restore' && (memory === 'auto' || memory === 'snapshot');
  const allow = quiesce === 'stop-and-restore' ? ['cont'] : [];
  if (snapshot) allow.push('migrate', 'migrate-set-capabilities', 'migrate-set-parameters', 'migrate_cancel');
  const { client, libvirtOwned } = await openSession(target, { allow });
  // A vmpm killed while it held this guest stopped left a claim: say so, with the command that undoes it.
  await reportStaleClaims(client, (line) => process.stderr.write(`vmpm: warning: ${line}\n`), { note: (line) => process.stderr.write(`vmpm: note: ${line}\n`) });
  const progress = o.json ? undefined : createProgressBar();
  // Until here a stop signal ends vmpm at once with one line and 128 + N (bin/vmpm's handler): the
  // guest is untouched. From here the capture gets it and cleans up (restores the guest, removes the
  // temporary bundle), a second signal included.
  const signals = abortOnSignals();
  try {
    const options: CaptureOptions = {
      output,
      overwrite: o.force ?? false,
      quiesce,
      memory,
      attachments: o.attach.map((p) => ({ name: basename(p), path: p })),
      keepPartial: o.keepPartial ?? false,
      signal: signals.signal,
    };
    if (o.label !== undefined) options.label = o.label;
    if (libvirtOwned !== undefined) options.libvirtOwned = libvirtOwned;
    if (level !== undefined) options.level = level;
    if (progress) options.onProgress = (p) => progress.update(p);
    const result = await capture(client, options).catch((err: unknown) => {
      // Stopped by Ctrl-C/SIGTERM/SIGHUP: the shell's 128 + N, like every other interrupted command.
      if (signals.signal.aborted && err instanceof VmpmError) throw new VmpmError(err.message, { exitCode: exitCodeForSignal(String(signals.signal.reason)), cause: err });
      throw err;
    });
    progress?.done();
    const signed = signKey ? await signFile(result.path, signKey, { force: o.force === true }) : undefined;
    if (o.json) process.stdout.write(`${JSON.stringify(signed ? { ...result.summary, signature: signed.signature } : result.summary, null, 2)}\n`);
    else {
      for (const w of result.summary.warnings) process.stderr.write(`vmpm: warning: ${w}\n`);
      process.stdout.write(`${formatSummaryLine(result.summary)}\n`);
      if (signed) process.stdout.write(`signed with ${signed.fingerprint} -> ${signed.signature}\n`);
    }
  } finally {
    progress?.done();
    // The scope outlives the close: a signal after the bundle is in place neither kills vmpm silently
    // nor turns the finished capture into a failure (the summary is printed, the exit code is the capture's).
    // It ends even if the close fails: a scope left behind would swallow every later signal.
    try {
      await client.close();
    } finally {
      signals.dispose();
    }
  }
}
