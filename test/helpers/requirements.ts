import { execFileSync } from 'node:child_process';

/**
 * Tests that need an external program (QEMU, nasm, zstd, chromium) call `requireTool` in their
 * `skip` option. Locally a missing tool skips the test with a message that says what to install;
 * under CI (CI=true) the same situation is a failure, because CI installs everything (.ci/run).
 */
const cache = new Map<string, boolean>();

export function hasTool(command: string): boolean {
  let ok = cache.get(command);
  if (ok === undefined) {
    try {
      execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
      ok = true;
    } catch {
      ok = false;
    }
    cache.set(command, ok);
  }
  return ok;
}

const PACKAGE_OF: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-system-aarch64': 'qemu-system-arm',
  nasm: 'nasm',
  zstd: 'zstd',
  chromium: 'chromium',
  virsh: 'libvirt-clients',
  age: 'age',
  'age-keygen': 'age',
  'ssh-keygen': 'openssh-client',
  makedumpfile: 'makedumpfile',
  gdb: 'gdb',
  crash: 'crash',
};

/**
 * Returns false when every tool is present (run the test), a skip message otherwise. Under CI a
 * missing tool throws, so the test file fails loudly instead of passing by skipping.
 */
export function requireTools(...commands: string[]): false | string {
  const missing = commands.filter((c) => !hasTool(c));
  if (missing.length === 0) return false;
  const pkgs = missing.map((c) => PACKAGE_OF[c] ?? c).join(' ');
  const message = `needs ${missing.join(', ')} (apt-get install ${pkgs})`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${message}`);
  return message;
}
