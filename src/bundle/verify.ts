/**
 * `BundleReader.verify()`: checks everything a bundle promises, reading the whole file once for its
 * digest and every frame once: the whole-file digest in the footer, the header flags, every section
 * digest (unknown types too), every frame's digest, decompression and size, and every stored page
 * against its page digest. Problems are collected, not thrown: one line each.
 */
import { createHash } from 'node:crypto';
import { describeError } from '../util/errors';
import { FLAG_DIGESTS_ONLY, type Footer, FOOTER_SIZE, PAGE_SIZE } from './format';
import type { FrameStore } from './frame-store';
import { sha256 } from './pages';

export interface VerifyResult {
  ok: boolean;
  sha256: string;
  problems: string[];
}

export interface VerifyInput {
  store: FrameStore;
  fileSize: number;
  footer: Footer;
  headerFlags: number;
  minor: number;
  digestsOnly: boolean;
}

export async function verifyBundle(v: VerifyInput, onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
  const { store, fileSize } = v;
  const s = store.s;
  const problems: string[] = [];
  const allSections = [...s.sections, ...s.unknownSections];
  const total = fileSize + allSections.reduce((a, e) => a + e.length, 0) + s.frames.reduce((a, f) => a + f.compressedLength, 0);
  let done = 0;
  const step = (n: number): void => {
    done += n;
    onProgress?.(done, total);
  };
  const whole = createHash('sha256');
  const footerAt = fileSize - FOOTER_SIZE;
  await store.hashRange(whole, 0, footerAt, step);
  const beforeFooter = whole.copy().digest();
  if (!beforeFooter.equals(v.footer.fileSha256)) {
    problems.push(`file content (bytes 0..${footerAt}) SHA-256 mismatch: footer says ${v.footer.fileSha256.toString('hex')}, data hashes to ${beforeFooter.toString('hex')}`);
  }
  await store.hashRange(whole, footerAt, fileSize, step);
  if (v.headerFlags !== 0 && v.minor === 0) problems.push(`header flags are 0x${v.headerFlags.toString(16)}, expected 0 in format 1.0`);
  if (((v.headerFlags & FLAG_DIGESTS_ONLY) !== 0) !== v.digestsOnly) {
    problems.push(`header flag digests-only is ${v.headerFlags & FLAG_DIGESTS_ONLY ? 'set' : 'clear'} but the bundle ${v.digestsOnly ? 'has' : 'has no'} memory-index section`);
  }
  for (const e of allSections) {
    const h = createHash('sha256');
    await store.hashRange(h, e.offset, e.offset + e.length, step);
    const d = h.digest();
    if (!d.equals(e.sha256)) problems.push(`section "${e.name}" (offset ${e.offset}, ${e.length} bytes): SHA-256 mismatch: index says ${e.sha256.toString('hex')}, data hashes to ${d.toString('hex')}`);
  }
  for (let i = 0; i < s.frames.length; i++) {
    const f = s.frames[i]!;
    try {
      const data = await store.loadFrame(i);
      for (let k = 0; k < f.slotCount; k++) {
        const d = sha256(data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
        const expected = store.slotDigest(f.firstSlot + k);
        if (!d.equals(expected)) {
          problems.push(`frame ${i}: stored page ${f.firstSlot + k} SHA-256 mismatch: index says ${expected.toString('hex')}, data hashes to ${d.toString('hex')}`);
          break;
        }
      }
    } catch (err) {
      problems.push(describeError(err).replace(`${store.path}: `, ''));
    }
    step(f.compressedLength);
  }
  return { ok: problems.length === 0, sha256: whole.digest('hex'), problems };
}
