/**
 * `vmpm seal` / `vmpm unseal`: a bundle (or any file) encrypted for transport in the age format,
 * readable by `age -d` and by vmpm. Both stream with memory bounded by a few chunks.
 */
import { promises as fsp } from 'node:fs';
import { ageDecrypt, ageEncrypt, parseIdentities, parseRecipient } from '../formats/age';
import { fsErrorText } from '../bundle/fs-errors';
import { VmpmError } from '../util/errors';
import { inputSize, readChunks, writeAtomically } from './files';

export interface SealResult {
  input: string;
  output: string;
  inputBytes: number;
  outputBytes: number;
  recipients: string[];
}

export async function sealFile(input: string, recipients: string[], output: string, force = false, signal?: AbortSignal): Promise<SealResult> {
  if (recipients.length === 0) throw new VmpmError('seal needs at least one --recipient (an age public key, age1...)');
  const keys = recipients.map(parseRecipient);
  const inputBytes = await inputSize(input);
  const outputBytes = await writeAtomically(output, ageEncrypt(keys, readChunks(input)), force, signal);
  return { input, output, inputBytes, outputBytes, recipients };
}

export interface UnsealResult {
  input: string;
  output: string;
  outputBytes: number;
}

export async function unsealFile(input: string, identityFile: string, output: string, force = false, signal?: AbortSignal): Promise<UnsealResult> {
  let text: string;
  try {
    const st = await fsp.stat(identityFile);
    if (!st.isFile() || st.size > 1 << 20) throw new VmpmError(`identity ${identityFile} is not an age identity file`);
    text = await fsp.readFile(identityFile, 'utf8');
  } catch (err) {
    if (err instanceof VmpmError) throw err;
    throw new VmpmError(`cannot read identity ${identityFile}: ${fsErrorText(err)}`, { cause: err });
  }
  const identities = parseIdentities(text, identityFile);
  await inputSize(input);
  const outputBytes = await writeAtomically(output, ageDecrypt(identities, readChunks(input), input), force, signal);
  return { input, output, outputBytes };
}
