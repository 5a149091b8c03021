import type { Command } from 'commander';
import { withBundle, buildInfo, transportLine, humanBytes, loadGuestKernel, guestKernelLine, guestKernelSummary, type GuestKernelFacts, type InfoModel } from '../../analysis';
import { printJson } from '../output/json';
import { palette, type Palette } from '../output/color';
import { renderKeyValues } from '../output/table';
import { signatureBeside, type SignatureCheck } from '../../custody';

/** `vmpm info FILE`: identity, run state, capture, CPUs, memory, errors, size, SHA-256, integrity. */
export function register(program: Command): void {
  program
    .command('info')
    .description('summarise a bundle: VM, run state, capture, CPUs, memory, errors, SHA-256 and integrity')
    .argument('<file>', 'bundle (.vmpm)')
    .option('--json', 'print the summary as JSON')
    .option('--no-verify', 'skip checking every section and frame digest (faster on big bundles)')
    .action(async (file: string, options: { json?: boolean; verify: boolean }) => {
      // The guest kernel's own facts (release, KASLR offset, crash time, panic line) when it is Linux.
      const [model, kernel] = await withBundle(file, async (b) => [await buildInfo(b, { verify: options.verify }), await loadGuestKernel(b, { lastMessages: 0 })] as const);
      // FILE.sig beside the bundle (vmpm sign, capture --sign-key): who signed, and whether it holds.
      const signature = await signatureBeside(file);
      if (options.json) printJson({ ...model, signature, guestKernel: guestKernelSummary(kernel) });
      else process.stdout.write(`${formatInfo(model, palette(), signature, kernel)}\n`);
      // An integrity failure is reported in the output (not as a crash) and makes the exit status 1.
      if (model.integrity.status === 'failed') process.exitCode = 1;
    });
}

export function formatInfo(m: InfoModel, p: Palette, signature: SignatureCheck | null = null, kernel?: GuestKernelFacts): string {
  const state = (s: InfoModel['runState']['after']): string => (s ? `${s.status}${s.reason ? ` (${s.reason})` : ''}` : 'not recorded');
  const integrity =
    m.integrity.status === 'ok' ? p.green('ok (all digests verified)') : m.integrity.status === 'failed' ? p.red(`FAILED: ${m.integrity.problems.length} problem(s), listed below`) : p.yellow('not checked (--no-verify)');
  const kinds = Object.entries(m.errors.byKind)
    .map(([k, n]) => `${k} ${n} (${(m.errors.sourcesByKind[k] ?? []).join(', ')})`)
    .join(', ');
  const cpus = m.cpus.map((c) => `#${c.index} ${c.mode}${c.exceptionLevel !== null ? ` EL${c.exceptionLevel}` : ''}${c.pc ? ` ip=${c.pc}` : ''}${c.halted ? ' halted' : ''}`).join('; ');
  const mem = m.memory;
  const pairs: Array<[string, string]> = [
    // Slim or redacted comes first: it changes how everything below must be read.
    ...(m.custody.headline ? [['Custody', p.yellow(m.custody.headline)] as [string, string]] : []),
    ['Bundle', `${m.file} (${humanBytes(m.fileSize)}, format ${m.format.major}.${m.format.minor})`],
    ['SHA-256', m.sha256 ?? 'not computed'],
    ['Integrity', integrity],
    ['Signature', signatureText(signature, p)],
    ['VM', `${m.vm.name ?? '(unnamed)'}${m.vm.uuid ? ` (${m.vm.uuid})` : ''}, ${m.vm.arch ?? 'arch unknown'}, ${m.vm.cpuCount ?? '?'} vCPU(s)${m.vm.ramSize ? `, ${humanBytes(m.vm.ramSize)} RAM` : ''}${m.vm.kvm === null ? '' : m.vm.kvm ? ', KVM' : ', TCG'}`],
    ['QEMU', m.qemu ? `${m.qemu.version}${m.qemu.package ? ` ${m.qemu.package}` : ''}` : 'not recorded'],
    ['Run state', `${p.bold(state(m.runState.after))}${m.runState.before && m.runState.before.status !== m.runState.after?.status ? `, before capture: ${state(m.runState.before)}` : ''}`],
    ['Captured', `${m.capture.createdAt ?? 'time not recorded'}${m.capture.origin ? ` (${m.capture.origin})` : ''}${m.capture.vmpmVersion ? ` by vmpm ${m.capture.vmpmVersion}` : ''}${m.capture.host ? ` on ${m.capture.host}` : ''}`],
    ['Policy', `${m.capture.quiesce ?? '?'}, memory via ${m.capture.memoryMethod ?? '?'}${m.capture.consistent === false ? p.yellow(', NOT consistent (guest was running)') : ''}${m.capture.totalMs !== null ? `, took ${m.capture.totalMs} ms` : ''}`],
  ];
  if (m.capture.transport) pairs.push(['Transport', transportLine(m.capture.transport)]);
  if (m.capture.trigger) pairs.push(['Trigger', m.capture.trigger]);
  pairs.push(
    ['CPUs', cpus || 'no registers recorded'],
    ...(m.registerSource ? [['Registers', `from ${m.registerSource.text}`] as [string, string]] : []),
    ['Memory', `${humanBytes(mem.capturedBytes)} in ${mem.ranges.length} range(s): ${mem.pages} pages, ${mem.zeroPages} zero, ${mem.dataPages} data (${mem.uniquePages} unique), ${mem.frames} frames, ${humanBytes(mem.compressedBytes)} compressed${m.capture.codec ? ` by ${m.capture.codec}` : ''}`],
    ...(kernel ? [['Guest kernel', guestKernelLine(kernel)] as [string, string]] : []),
    ...(kernel?.available && kernel.panic ? [['Panic', p.red(`[${kernel.panic.time}] ${kernel.panic.line}`)] as [string, string]] : []),
    ['Errors', m.errors.total === 0 ? 'none' : `${m.errors.total}: ${kinds}`],
    ['Events', `${m.events.total}${m.events.dropped ? ` (${m.events.dropped} dropped)` : ''}`],
  );
  for (const w of m.capture.warnings) pairs.push(['Warning', p.yellow(w)]);
  for (const problem of m.integrity.problems) pairs.push(['Problem', p.red(problem)]);
  return renderKeyValues(pairs.map(([k, v]) => [p.bold(k), v] as [string, string]));
}

function signatureText(s: SignatureCheck | null, p: Palette): string {
  if (!s) return 'none (no FILE.sig beside the bundle; see vmpm sign)';
  if (s.problem !== null) return p.red(`${s.signature}: DOES NOT HOLD: ${s.problem}`);
  return `${p.green('holds')}: ${s.signature} by ${s.signedBy} (check the key: vmpm verify FILE --signer KEY)`;
}
