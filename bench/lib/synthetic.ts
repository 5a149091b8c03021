/**
 * Deterministic synthetic guest-RAM images for benchmarks, written to a file in one streaming pass.
 * realistic: 60 % zero pages, 15 % x86-64 ELF pages (consecutive slices of binaries in /usr/bin),
 * 15 % text pages (/usr/share/common-licenses and /usr/share/doc), 10 % AES-256-CTR keystream;
 * types laid out in runs of 1-32 pages (mulberry32, seed 0x5eed). random: all keystream. zero: all zero.
 * The same seed and the same host files give the same image.
 */
import { createCipheriv } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

export type ImageKind = 'realistic' | 'random' | 'zero';
const PAGE = 4096;

/** mulberry32: small deterministic PRNG, so every bench run sees the same images. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An endless deterministic page source cycling through the given files' bytes. */
class FileCycler {
  private index = 0;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  constructor(private readonly files: string[]) {
    if (files.length === 0) throw new Error('no source files for synthetic pages');
  }
  page(): Buffer {
    while (this.pos + PAGE > this.buf.length) {
      this.buf = readFileSync(this.files[this.index % this.files.length]!);
      this.index++;
      this.pos = 0;
    }
    const p = this.buf.subarray(this.pos, this.pos + PAGE);
    this.pos += PAGE;
    return p;
  }
}

function listFiles(dir: string, limit: number, filter: (name: string, size: number) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (out.length >= limit || !existsSync(d)) return;
    for (const name of readdirSync(d).sort()) {
      if (out.length >= limit) return;
      const p = join(d, name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && filter(name, st.size)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function keystream(): () => Buffer {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 0x42), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(PAGE * 256);
  return () => cipher.update(zeros);
}

/** Writes `bytes` (a multiple of 1 MiB) of the given image kind to `path`. */
export async function writeSyntheticImage(path: string, kind: ImageKind, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const write = async (b: Buffer): Promise<void> => {
    if (!out.write(b)) await once(out, 'drain');
  };
  const chunk = 1024 * 1024;
  if (kind === 'zero') {
    const z = Buffer.alloc(chunk);
    for (let i = 0; i < bytes; i += chunk) await write(z);
  } else if (kind === 'random') {
    const ks = keystream();
    for (let i = 0; i < bytes; i += chunk) await write(ks());
  } else {
    const rand = mulberry32(0x5eed);
    const elf = new FileCycler(['/usr/bin/qemu-system-x86_64', '/usr/bin/node', ...listFiles('/usr/bin', 200, (_n, s) => s > 1 << 20)].filter(existsSync));
    const text = new FileCycler([
      ...listFiles('/usr/share/common-licenses', 50, () => true),
      ...listFiles('/usr/share/doc', 400, (n, s) => !n.endsWith('.gz') && s > 8192),
    ]);
    const ks = keystream();
    let ksBuf: Buffer = Buffer.alloc(0);
    const zero = Buffer.alloc(PAGE);
    const pages = bytes / PAGE;
    let batch: Buffer[] = [];
    for (let p = 0; p < pages; ) {
      const r = rand();
      const kindOfRun = r < 0.6 ? 0 : r < 0.75 ? 1 : r < 0.9 ? 2 : 3;
      const run = Math.min(1 + Math.floor(rand() * 32), pages - p);
      for (let k = 0; k < run; k++, p++) {
        if (kindOfRun === 0) batch.push(zero);
        else if (kindOfRun === 1) batch.push(elf.page());
        else if (kindOfRun === 2) batch.push(text.page());
        else {
          if (ksBuf.length < PAGE) ksBuf = ks();
          batch.push(ksBuf.subarray(0, PAGE));
          ksBuf = ksBuf.subarray(PAGE);
        }
        if (batch.length === 256) {
          await write(Buffer.concat(batch));
          batch = [];
        }
      }
    }
    if (batch.length) await write(Buffer.concat(batch));
  }
  out.end();
  await once(out, 'finish');
}
