import type { Command } from 'commander';
import { loadSigningKey, signFile } from '../../custody';
import { checkOutputPath } from '../output/write';
import { printJson } from '../output/json';

/**
 * `vmpm sign FILE --key KEY`: an OpenSSH (SSHSIG) Ed25519 signature of the file, namespace "vmpm",
 * written to FILE.sig; `vmpm verify FILE --signer PUBKEY` and `ssh-keygen -Y verify -n vmpm` check it.
 */
export function register(program: Command): void {
  program
    .command('sign')
    .description('sign a bundle with an OpenSSH Ed25519 key (SSHSIG, namespace vmpm) into FILE.sig')
    .argument('<file>', 'file to sign, e.g. case.vmpm')
    .requiredOption('-k, --key <file>', 'unencrypted OpenSSH Ed25519 private key, e.g. /etc/ssh/ssh_host_ed25519_key')
    .option('-o, --output <file>', 'signature file to write (default FILE.sig)')
    .option('--force', 'overwrite an existing signature file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  vmpm sign case.vmpm --key /etc/ssh/ssh_host_ed25519_key
  vmpm verify case.vmpm --signer /etc/ssh/ssh_host_ed25519_key.pub
  echo "vm-host-1 $(cat /etc/ssh/ssh_host_ed25519_key.pub)" > allowed_signers
  ssh-keygen -Y verify -n vmpm -I vm-host-1 -f allowed_signers -s case.vmpm.sig < case.vmpm`,
    )
    .action(async (file: string, o: { key: string; output?: string; force?: boolean; json?: boolean }) => {
      const signaturePath = o.output ?? `${file}.sig`;
      checkOutputPath(signaturePath, o.force === true);
      const key = await loadSigningKey(o.key);
      const r = await signFile(file, key, { signaturePath, force: o.force === true });
      if (o.json) printJson(r);
      else process.stdout.write(`signed ${r.file} with ${r.fingerprint}${r.comment ? ` (${r.comment})` : ''} -> ${r.signature}\n`);
    });
}
