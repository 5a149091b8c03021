import type { Command } from 'commander';
import { sealFile, unsealFile } from '../../custody';
import { abortOnSignals } from '../signals';
import { checkOutputPath } from '../output/write';
import { printJson } from '../output/json';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/**
 * `vmpm seal FILE --recipient age1... -o OUT` and `vmpm unseal FILE --identity KEYFILE -o OUT`:
 * age encryption for sending a bundle, interoperable with the age CLI (age -d / age -r).
 */
export function register(program: Command): void {
  program
    .command('seal')
    .description('encrypt a bundle (or any file) for its recipients in the age format (age -d opens it)')
    .argument('<file>', 'file to encrypt, e.g. case.vmpm')
    .requiredOption('-r, --recipient <age1...>', 'age public key of a recipient (repeatable)', collect, [])
    .requiredOption('-o, --output <file>', 'encrypted file to write (e.g. case.vmpm.age)')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  vmpm seal case.vmpm -r age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p -o case.vmpm.age
  age -d -i key.txt -o case.vmpm case.vmpm.age        # or: vmpm unseal case.vmpm.age --identity key.txt -o case.vmpm`,
    )
    .action(async (file: string, o: { recipient: string[]; output: string; force?: boolean; json?: boolean }) => {
      checkOutputPath(o.output, o.force === true);
      const signals = abortOnSignals();
      try {
        const r = await sealFile(file, o.recipient, o.output, o.force === true, signals.signal);
        if (o.json) printJson(r);
        else process.stdout.write(`sealed ${r.input} (${r.inputBytes} bytes) for ${r.recipients.length} recipient(s) -> ${r.output} (${r.outputBytes} bytes)\n`);
      } finally {
        signals.dispose();
      }
    });
  program
    .command('unseal')
    .description('decrypt an age-encrypted file (from vmpm seal or age -r) with an age identity')
    .argument('<file>', 'age-encrypted file, e.g. case.vmpm.age')
    .requiredOption('-i, --identity <keyfile>', 'age identity file (AGE-SECRET-KEY-1..., as written by age-keygen)')
    .requiredOption('-o, --output <file>', 'decrypted file to write (written only if the whole file authenticates)')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  vmpm unseal case.vmpm.age --identity ~/.config/vmpm/age-key.txt -o case.vmpm && vmpm verify case.vmpm`,
    )
    .action(async (file: string, o: { identity: string; output: string; force?: boolean; json?: boolean }) => {
      checkOutputPath(o.output, o.force === true);
      const signals = abortOnSignals();
      try {
        const r = await unsealFile(file, o.identity, o.output, o.force === true, signals.signal);
        if (o.json) printJson(r);
        else process.stdout.write(`unsealed ${r.input} -> ${r.output} (${r.outputBytes} bytes, every chunk authenticated)\n`);
      } finally {
        signals.dispose();
      }
    });
}
