import { createHash } from 'node:crypto';
import { encodeFooter, FOOTER_SIZE, SECTION_ENTRY_SIZE, TRAILER_HEADER_SIZE } from '../../src/bundle/format';
import { parseFooter, parseHeader } from '../../src/bundle/structure';

/**
 * Forges a bundle the way an attacker (or a buggy tool) can: replaces the bytes of named sections and
 * recomputes every digest that covers them (the section digest, the trailer digest and the whole-file
 * digest in the footer), so the result passes `vmpm verify` and only the readers' own checks stand
 * between it and a crash. The old section bytes stay in the body, unreferenced; the new ones are
 * appended before the trailer.
 */
export function forgeSections(bundle: Buffer, replace: Record<string, Buffer | string>): Buffer {
  const header = parseHeader('forge', bundle.subarray(0, 32), bundle.length);
  const footer = parseFooter('forge', bundle.subarray(bundle.length - FOOTER_SIZE), bundle.length, header);
  const trailerOffset = Number(footer.trailerOffset);
  const trailer = Buffer.from(bundle.subarray(trailerOffset, trailerOffset + Number(footer.trailerLength)));
  const sectionCount = trailer.readUInt32LE(0);
  const rangeCount = trailer.readUInt32LE(4);
  const frameCount = trailer.readUInt32LE(8);
  const slotCount = trailer.readUInt32LE(12);
  const pageCount = Number(trailer.readBigUInt64LE(16));
  const stringsAt = TRAILER_HEADER_SIZE + sectionCount * SECTION_ENTRY_SIZE + rangeCount * 40 + frameCount * 56 + pageCount * 4 + slotCount * 32;
  const appended: Buffer[] = [];
  let at = trailerOffset;
  const found = new Set<string>();
  for (let i = 0; i < sectionCount; i++) {
    const o = TRAILER_HEADER_SIZE + i * SECTION_ENTRY_SIZE;
    const name = trailer.toString('utf8', stringsAt + trailer.readUInt32LE(o + 20), stringsAt + trailer.readUInt32LE(o + 20) + trailer.readUInt32LE(o + 24));
    const next = replace[name];
    if (next === undefined) continue;
    found.add(name);
    const data = typeof next === 'string' ? Buffer.from(next, 'utf8') : next;
    trailer.writeBigUInt64LE(BigInt(at), o);
    trailer.writeBigUInt64LE(BigInt(data.length), o + 8);
    createHash('sha256').update(data).digest().copy(trailer, o + 32);
    appended.push(data);
    at += data.length;
  }
  const missing = Object.keys(replace).filter((n) => !found.has(n));
  if (missing.length > 0) throw new Error(`forgeSections: bundle has no section(s) ${missing.join(', ')}`);
  return finish(Buffer.concat([bundle.subarray(0, trailerOffset), ...appended]), trailer, header.minor);
}

/** Appends `trailer` and a footer whose digests match (format minor `minor`, as the header's): what every forgery ends with. */
export function finish(body: Buffer, trailer: Buffer, minor?: number): Buffer {
  const trailerSha256 = createHash('sha256').update(trailer).digest();
  const beforeFooter = Buffer.concat([body, trailer]);
  const fileSha256 = createHash('sha256').update(beforeFooter).digest();
  return Buffer.concat([beforeFooter, encodeFooter({ trailerOffset: BigInt(body.length), trailerLength: BigInt(trailer.length), trailerSha256, fileSha256 }, minor)]);
}

/** Replaces JSON sections by values (serialised as the writer would). */
export function forgeJson(bundle: Buffer, replace: Record<string, unknown>): Buffer {
  const bytes: Record<string, string> = {};
  for (const [k, v] of Object.entries(replace)) bytes[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return forgeSections(bundle, bytes);
}
