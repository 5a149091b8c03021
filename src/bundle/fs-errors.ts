/**
 * File-system errors in the words a user needs: node's messages repeat the code, the syscall and
 * the path ("ENOSPC: no space left on device, write"), and callers already name the file.
 */
import { describeError } from '../util/errors';

/** The errno code of a node fs error ("ENOENT"), if it has one. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** "no space left on device" for an ENOSPC error; describeError() for anything that is not an fs error. */
export function fsErrorText(err: unknown): string {
  const text = describeError(err);
  const code = errnoCode(err);
  if (code === undefined || !text.startsWith(`${code}: `)) return text;
  // "<CODE>: <description>, <syscall>[ '<path>'[ -> '<dest>']]"
  return text.slice(code.length + 2).replace(/, [a-z_]+( '.*')?$/, '');
}
