import type { Command } from 'commander';
import { streamSection, withBundle } from '../../analysis';
import { UsageError } from '../../util/errors';
import { formatJson } from '../output/json';
import { renderTable } from '../output/table';
import { closeOutput, discardOutput, openOutput, checkOutputPath, writeChunk } from '../output/write';

interface SectionOptions {
  output?: string;
  force?: boolean;
  json?: boolean;
}

/**
 * `vmpm section FILE [NAME]`: lists a bundle's sections, or writes one out (the attached serial log,
 * VMCOREINFO, the ELF notes, the QMP transcript ...), digest-checked.
 */
export function register(program: Command): void {
  program
    .command('section')
    .description("list a bundle's sections, or extract one (attachments, vmcoreinfo, elf-notes, qmp-transcript ...)")
    .argument('<file>', 'bundle (.vmpm)')
    .argument('[name]', 'section to write out, e.g. attachment/serial.log or vmcoreinfo')
    .option('-o, --output <file>', 'write the section to this file instead of stdout')
    .option('--force', 'overwrite the -o file if it exists')
    .option('--json', 'list the sections as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  vmpm section crash.vmpm\n  vmpm section crash.vmpm vmcoreinfo\n  vmpm section crash.vmpm attachment/serial.log -o serial.log\n  vmpm section crash.vmpm elf-notes -o notes.bin',
    )
    .action(async (file: string, name: string | undefined, o: SectionOptions) => {
      if (name === undefined) {
        if (o.output) throw new UsageError('-o needs a section NAME to write');
        await withBundle(file, async (bundle) => {
          const sections = bundle.sections();
          if (o.json) {
            process.stdout.write(formatJson({ sections: sections.map((s) => ({ name: s.name, type: s.type, length: s.length, sha256: s.sha256 })) }));
            return;
          }
          const rows = sections.map((s) => [s.name, s.type, String(s.length), s.sha256]);
          process.stdout.write(`${renderTable(['Section', 'Type', 'Bytes', 'SHA-256'], rows, { align: ['left', 'left', 'right', 'left'] })}\n`);
        });
        return;
      }
      if (o.json) throw new UsageError('--json lists sections; to get a JSON section, name it without --json');
      if (o.output) checkOutputPath(o.output, o.force === true);
      await withBundle(file, async (bundle) => {
        // Streamed: a raw section may be up to 2 GiB, and is written in 4 MiB pieces after its digest is checked.
        const section = await streamSection(bundle, name);
        if (!o.output) {
          if (!section.text && process.stdout.isTTY) {
            throw new UsageError(`section ${name} is binary (${section.info.length} bytes); use -o FILE or pipe the output`);
          }
          for await (const chunk of section.chunks) await writeChunk(process.stdout, chunk);
          return;
        }
        const out = await openOutput(o.output, o.force === true);
        try {
          for await (const chunk of section.chunks) await writeChunk(out, chunk);
          await closeOutput(out);
        } catch (err) {
          await discardOutput(out, o.output);
          throw err;
        }
      });
    });
}
