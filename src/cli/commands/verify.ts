import type { Command } from 'commander';
import { BundleReader } from '../../bundle';
import { toHex } from '../../util/hex';
import { palette } from '../output/color';
import { printJson } from '../output/json';
import { custodyStatus } from '../../analysis';
import { checkSignature, type SignatureCheck } from '../../custody';
import { UsageError } from '../../util/errors';

/**
 * `vmpm verify FILE`: checks a bundle's structure and every digest (whole file, trailer, sections,
 * frames, pages) and prints its SHA-256, the same value `sha256sum` prints. Exit 0 only when all holds.
 */
export function register(program: Command): void {
  program
    .command('verify')
    .description('check a bundle\'s structure and every digest; print its SHA-256 (exit 0 only if intact)')
    .argument('<file>', 'bundle file (*.vmpm)')
    .option('--json', 'print the result as JSON')
    .option('--signature <file>', 'also check this SSHSIG signature of the file (default with --signer: FILE.sig)')
    .option('--signer <key>', 'the trusted signer: an ssh-ed25519 public key line, or a file of authorized_keys / allowed_signers lines')
    .addHelpText(
      'after',
      `
Examples:
  vmpm verify crash-2024-05-01.vmpm
  vmpm verify --json crash.vmpm | jq .sha256
  vmpm verify crash.vmpm --signature crash.vmpm.sig --signer /etc/ssh/ssh_host_ed25519_key.pub`,
    )
    .action(runVerify);
}

/** The action: the signature first, then every digest; exit 1 when either does not hold. */
async function runVerify(file: string, options: { json?: boolean; signature?: string; signer?: string }): Promise<void> {
  if (options.signature !== undefined && options.signer === undefined) {
    throw new UsageError('--signature needs --signer (the public key you trust): anyone can sign a file with a key of their own');
  }
  // Checked first: a signature that does not hold is the answer even if the bundle is also damaged.
  const signature = options.signer === undefined ? undefined : await checkSignature(file, options.signature ?? `${file}.sig`, options.signer);
  const showProgress = !options.json && process.stderr.isTTY === true;
  let lastPct = -1;
  const result = await BundleReader.verifyFile(file, (done, total) => {
    const pct = Math.floor((done * 100) / Math.max(1, total));
    if (showProgress && pct !== lastPct) {
      lastPct = pct;
      process.stderr.write(`\rverifying ${pct}%`);
    }
  });
  if (showProgress) process.stderr.write('\r\x1b[K');
  const reader = result.reader;
  try {
    // Slim or redacted is said first: verify OK means "as written by slim/redact", not "as captured".
    const custody = reader ? await custodyStatus(reader).catch(() => null) : null;
    const sections = reader?.sections() ?? [];
    const stats = reader?.stats();
    if (options.json) {
      printJson({
        file,
        ok: result.ok,
        sha256: result.sha256,
        size: reader?.fileSize ?? null,
        format: reader ? `${reader.version.major}.${reader.version.minor}` : null,
        sections: sections.map((s) => ({ name: s.name, type: s.type, length: s.length, sha256: s.sha256 })),
        ranges: (reader?.ranges() ?? []).map((r) => ({ start: toHex(r.start), length: toHex(r.length), name: r.name ?? null, pages: r.pages, zeroPages: r.zeroPages })),
        stats: stats ? { ...stats, capturedBytes: toHex(stats.capturedBytes) } : null,
        problems: result.problems,
        custody: custody ? { slim: custody.slim !== null || reader?.digestsOnly === true, redacted: custody.redaction !== null, headline: custody.headline } : null,
        ...(signature ? { signature } : {}),
      });
    } else {
      const p = palette();
      const lines: string[] = [];
      if (custody?.headline) lines.push(p.yellow(custody.headline));
      lines.push(`bundle    ${file}`);
      if (reader) {
        lines.push(`format    ${reader.version.major}.${reader.version.minor}, ${reader.fileSize} bytes`);
      }
      lines.push(`sha256    ${result.sha256}`);
      if (reader && stats) {
        lines.push(`sections  ${sections.length}${sections.length ? ': ' + sections.map((s) => `${s.name} (${s.type}, ${s.length} B)`).join(', ') : ''}`);
        lines.push(
          `memory    ${reader.ranges().length} range(s), ${stats.capturedBytes} bytes: ${stats.pages} pages (${stats.zeroPages} zero, ${stats.dataPages} data, ${stats.uniquePages} unique stored) in ${stats.frames} frame(s), ${stats.compressedBytes} bytes compressed`,
        );
      }
      if (signature) lines.push(`signature ${signatureLine(signature, p)}`);
      if (result.ok) lines.push(`result    ${p.green('OK')}: structure and every digest verified`);
      else {
        lines.push(`result    ${p.red('FAILED')}: ${result.problems.length} problem(s)`);
        for (const problem of result.problems) lines.push(`  - ${problem}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  } finally {
    await reader?.close();
  }
  if (!result.ok || (signature && signature.problem !== null)) process.exitCode = 1;
}

/** One line: who signed, and whether the signature holds (and is by the signer given). */
export function signatureLine(s: SignatureCheck, p: ReturnType<typeof palette>): string {
  const who = `${s.signedBy ?? s.keyType}${s.signer ? ` (${s.signer})` : ''}`;
  if (s.problem === null) return `${p.green('OK')}: ${s.signature} by ${who}${s.trusted ? ', the signer given' : ''}, holds for this file`;
  return `${p.red('FAILED')}: ${s.signature}: ${s.problem}`;
}
