/**
 * `klog --scan`: a heuristic for when no VMCOREINFO can be found (or it is wrong). It looks in every
 * captured non-zero page for the shape of the printk text ring (Linux 5.10+): 8-byte-aligned blocks of
 * {unsigned long id; char text[]}, where consecutive records usually sit next to each other with ids
 * id, id+1, id+2. A chain of at least MIN_CHAIN such blocks is reported with its physical address.
 *
 * What it cannot know, and says so: timestamps, levels and sequence numbers live in the descriptor
 * ring, which needs VMCOREINFO to find; a block's padding (up to 7 bytes) may hold stale printable
 * bytes that end up in the text; a chain may be a stale copy. The output is labelled as a heuristic.
 */
import { toHex } from '../../util/hex';
import type { PageSource } from './vmcoreinfo-scan';

const PAGE = 4096;
/** PRINTKRB_RECORD_MAX: no record's text is longer. */
const MAX_TEXT = 1024;
const MIN_CHAIN = 4;
/** Chains of tiny texts are counters and small structs, not a log: ask for log-sized lines. */
const MIN_AVERAGE_TEXT = 12;
const MAX_RECORDS = 100_000;
const ID_TOP = 1n << 62n;

export interface ScannedRecord {
  phys: bigint;
  id: bigint;
  text: string;
}

export interface ScanLog {
  records: ScannedRecord[];
  chains: number;
  pagesScanned: number;
  truncated: boolean;
}

function printable(b: number): boolean {
  return (b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x09;
}

export async function scanForLogText(pages: PageSource): Promise<ScanLog> {
  const records: ScannedRecord[] = [];
  let chains = 0;
  let pagesScanned = 0;
  let prev: { addr: bigint; data: Buffer } | undefined;
  let skipUntil = -1n;
  const consider = (cur: { addr: bigint; data: Buffer } | undefined): void => {
    if (!prev) return;
    // Scan the previous page, with the following page appended when it is contiguous, so blocks
    // that straddle a page boundary are still seen.
    const buf = cur && cur.addr === prev.addr + BigInt(PAGE) ? Buffer.concat([prev.data, cur.data]) : prev.data;
    for (let o = 0; o < PAGE && records.length < MAX_RECORDS; o += 8) {
      if (prev.addr + BigInt(o) < skipUntil) continue;
      const chain = chainAt(buf, o);
      if (chain.length < MIN_CHAIN) continue;
      const average = chain.reduce((n, b) => n + b.text.length, 0) / chain.length;
      if (average < MIN_AVERAGE_TEXT || !chain.some((b) => /[A-Za-z]{3}/.test(b.text))) continue;
      chains++;
      for (const r of chain) records.push({ phys: prev.addr + BigInt(r.at), id: r.id, text: r.text });
      const last = chain[chain.length - 1]!;
      skipUntil = prev.addr + BigInt(last.end);
    }
  };
  for await (const page of pages.dataPages()) {
    pagesScanned++;
    consider(page);
    prev = page;
  }
  consider(undefined);
  return { records: records.slice(0, MAX_RECORDS), chains, pagesScanned, truncated: records.length >= MAX_RECORDS };
}

interface Block {
  at: number;
  end: number;
  id: bigint;
  text: string;
}

/** Blocks with consecutive ids starting at `o`, as long as they last. */
function chainAt(buf: Buffer, start: number): Block[] {
  const out: Block[] = [];
  let o = start;
  while (o + 16 <= buf.length && out.length < 10_000) {
    const id = buf.readBigUInt64LE(o);
    if (id === 0n || id >= ID_TOP) break;
    let run = 0;
    while (run < MAX_TEXT + 8 && o + 8 + run < buf.length && printable(buf[o + 8 + run]!)) run++;
    if (run < 1) break;
    // The next block starts at the 8-byte boundary after the text; stale printable padding can make
    // the run up to 7 bytes longer than the text.
    let next = -1;
    for (let t = Math.max(1, run - 7); t <= Math.min(run, MAX_TEXT); t++) {
      const p = o + 8 + Math.ceil(t / 8) * 8;
      if (p + 8 <= buf.length && buf.readBigUInt64LE(p) === id + 1n) {
        next = p;
        break;
      }
    }
    const textEnd = next >= 0 ? Math.min(o + 8 + run, next) : o + 8 + run;
    // A stored text never ends in a newline (printk strips it): one there is stale padding.
    const text = buf.toString('latin1', o + 8, textEnd).replace(/\n+$/, '');
    if (next < 0) {
      // The last block of a chain has no successor to confirm its end: keep it only after a chain.
      if (out.length >= MIN_CHAIN - 1 && run <= MAX_TEXT) out.push({ at: o, end: textEnd, id, text });
      break;
    }
    out.push({ at: o, end: next, id, text });
    o = next;
  }
  return out;
}

export function describeScanRecord(r: ScannedRecord): string {
  return `[${toHex(r.phys)}] ${r.text}`;
}
