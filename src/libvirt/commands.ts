/**
 * What each QMP command vmpm sends becomes on a libvirt host. The rule (issue 15): libvirt's own
 * operation wherever libvirt has one; `virsh qemu-monitor-command` only for read-only queries libvirt
 * has no API for; and nothing that changes the guest behind libvirt's back.
 *
 *   stop                 -> virsh suspend DOM
 *   cont                 -> virsh resume DOM
 *   query-status         -> virsh domstate DOM --reason  (mapped to QEMU's run state; libvirt's words kept)
 *   query-name/-uuid     -> virsh dominfo DOM (read once when the monitor opens)
 *   query-target         -> the domain XML's <type arch=...>
 *   dump-guest-memory    -> virsh dump DOM FILE --memory-only --format elf|kdump-*  (libvirt runs QEMU's
 *                           dump inside its own job: vmpm never sends dump-guest-memory to a QEMU that
 *                           libvirt owns, which crashed libvirtd 9.0 in 3 of 5 trials)
 *   query-*, qom-get/list, human-monitor-command `info`/`x`/`xp`, pmemsave/memsave
 *                        -> virsh qemu-monitor-command DOM '{"execute":...}'  (read-only; pmemsave and
 *                           memsave only read guest memory into a host file, the fallback memory path)
 *   anything else        -> refused with an error reply: use virsh for it
 */
import { hmpCommandName, stringifyJson, type JsonValue } from '../qmp';
import { parseJson } from '../qmp';
import { domainState } from './domain';
import { LibvirtError } from './errors';
import { qmpStatusOf } from './run-state';
import type { Virsh } from './virsh';

/** A QMP-style error: becomes {"error":{"class","desc"}} on the wire. */
export class CommandRefused extends Error {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(desc);
  }
}

export interface CommandContext {
  virsh: Virsh;
  domain: string;
  name: string;
  uuid: string;
  arch: string | null;
  /** Reported with every query-status, for the bundle's manifest (transport.libvirt). */
  facts: { uri: string | null; libvirtVersion: string | null; qemuVersion: string | null; readiness: string[] };
  /** Called when libvirt says the domain is gone (shut off, undefined): the monitor closes. */
  gone: (err: LibvirtError) => void;
}

const READ_ONLY_PASSTHROUGH = new Set(['qom-get', 'qom-list', 'qom-list-types', 'qom-list-properties', 'device-list-properties']);
const HMP_READ_ONLY = new Set(['info', 'x', 'xp', 'print', 'p', 'help', '?']);
/** A dump of a very large guest into a slow consumer can take long; the QMP session's timeout is the real bound. */
const DUMP_TIMEOUT_MS = 6 * 3600_000;
/** libvirt's arch names that differ from QEMU's query-target ones. */
const ARCH_TO_QEMU: Record<string, string> = { i686: 'i386', armv7l: 'arm', ppc64le: 'ppc64' };

export async function runCommand(ctx: CommandContext, command: string, args: Record<string, unknown> | undefined): Promise<JsonValue> {
  switch (command) {
    case 'qmp_capabilities':
      return {}; // libvirt negotiated the monitor long ago; nothing to send
    case 'query-status':
      return queryStatus(ctx);
    case 'stop':
      await libvirtOp(ctx, ['suspend', ctx.domain]);
      return {};
    case 'cont':
      await libvirtOp(ctx, ['resume', ctx.domain]);
      return {};
    case 'query-name':
      return { name: ctx.name };
    case 'query-uuid':
      return { UUID: ctx.uuid };
    case 'query-target':
      if (ctx.arch === null) return passthrough(ctx, command, args);
      return { arch: ARCH_TO_QEMU[ctx.arch] ?? ctx.arch };
    case 'dump-guest-memory':
      refuseRemoteFile(ctx, command);
      return libvirtDump(ctx, args);
    case 'pmemsave':
    case 'memsave':
      refuseRemoteFile(ctx, command);
      return passthrough(ctx, command, args);
    case 'human-monitor-command':
      return hmp(ctx, args);
    default:
      if (/^(x-)?query-/.test(command) || READ_ONLY_PASSTHROUGH.has(command)) return passthrough(ctx, command, args);
      throw new CommandRefused(
        'GenericError',
        `vmpm's libvirt transport does not send ${command} to a QEMU that libvirt manages (only libvirt operations and read-only queries); use virsh for it`,
      );
  }
}

/**
 * libvirtd (and QEMU) open the dump's file on the libvirt host: through a remote URI
 * (qemu+ssh://host/system) that is another machine, where vmpm's FIFO does not exist.
 */
function refuseRemoteFile(ctx: CommandContext, command: string): void {
  if (ctx.facts.uri !== null && isRemoteUri(ctx.facts.uri)) {
    throw new CommandRefused('GenericError', `${command} writes a file on the libvirt host ${remoteHost(ctx.facts.uri)}, not here: capture memory on that host, or use --no-memory`);
  }
}

/** `qemu+ssh://root@host1/system` -> true; `qemu:///system`, `qemu+unix:///system?socket=...` -> false. */
export function isRemoteUri(uri: string): boolean {
  const host = remoteHost(uri);
  return host !== '' && host !== 'localhost' && host !== '127.0.0.1' && host !== '::1';
}

function remoteHost(uri: string): string {
  const m = /^[A-Za-z0-9+.-]+:\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^/:?]*)/.exec(uri);
  return (m?.[1] ?? '').replace(/^\[|\]$/g, '');
}

async function queryStatus(ctx: CommandContext): Promise<JsonValue> {
  const state = await libvirtCall(ctx, () => domainState(ctx.virsh, ctx.domain));
  const mapped = qmpStatusOf(state);
  if (mapped === null) {
    const err = new LibvirtError(`libvirt domain ${ctx.domain} is ${state.text}: no QEMU process to inspect`, 'not-running', state.text);
    ctx.gone(err);
    throw new CommandRefused('DeviceNotActive', err.message);
  }
  // `libvirt` is not a QMP field: libvirt's own words and facts, for the manifest and the transcript.
  return {
    status: mapped.status,
    running: mapped.running,
    singlestep: false,
    libvirt: { state: state.state, reason: state.reason, domain: ctx.domain, uuid: ctx.uuid, ...ctx.facts },
  };
}

/** A libvirt operation; its failure becomes the command's error (and a vanished domain closes the monitor). */
async function libvirtOp(ctx: CommandContext, args: string[], timeoutMs?: number): Promise<string> {
  return libvirtCall(ctx, () => ctx.virsh.run(args, timeoutMs === undefined ? {} : { timeoutMs }));
}

async function libvirtCall<T>(ctx: CommandContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof LibvirtError) {
      if (err.kind === 'no-domain' || err.kind === 'not-running' || err.kind === 'unreachable') ctx.gone(err);
      throw new CommandRefused('GenericError', err.message);
    }
    throw err;
  }
}

/** `virsh dump --memory-only`: libvirt opens FILE itself and hands QEMU the descriptor within its dump job. */
async function libvirtDump(ctx: CommandContext, args: Record<string, unknown> | undefined): Promise<JsonValue> {
  const protocol = args?.protocol;
  if (typeof protocol !== 'string' || !protocol.startsWith('file:')) {
    throw new CommandRefused('GenericError', 'through libvirt, dump-guest-memory can only write a file (protocol file:PATH)');
  }
  if (args?.paging === true) throw new CommandRefused('GenericError', 'virsh dump --memory-only has no paging mode');
  if (args?.begin !== undefined || args?.length !== undefined) throw new CommandRefused('GenericError', 'virsh dump --memory-only dumps all of RAM (no begin/length)');
  const format = typeof args?.format === 'string' ? args.format : 'elf';
  // virsh returns when libvirt's dump job ends, i.e. after QEMU's DUMP_COMPLETED: the reply means "done".
  // Bounded by the caller's own command timeout (it closes the FIFO, which ends QEMU's dump), not here.
  await libvirtOp(ctx, ['dump', ctx.domain, protocol.slice(5), '--memory-only', '--format', format], DUMP_TIMEOUT_MS);
  return {};
}

function hmp(ctx: CommandContext, args: Record<string, unknown> | undefined): Promise<JsonValue> {
  const line = args?.['command-line'];
  const word = typeof line === 'string' ? hmpCommandName(line) : '';
  if (!HMP_READ_ONLY.has(word)) {
    throw new CommandRefused('GenericError', `vmpm's libvirt transport sends only read-only HMP commands (info, x, xp), not ${JSON.stringify(word)}`);
  }
  return passthrough(ctx, 'human-monitor-command', args);
}

/**
 * `virsh qemu-monitor-command DOM '{"execute":...}'`: QEMU's reply comes back verbatim (libvirt's id
 * in it), so exact integers and HMP text with its \r\n survive; virsh exits 0 on a QMP error too.
 */
async function passthrough(ctx: CommandContext, command: string, args: Record<string, unknown> | undefined): Promise<JsonValue> {
  const request = stringifyJson(args === undefined ? { execute: command } : { execute: command, arguments: args });
  const out = await libvirtOp(ctx, ['qemu-monitor-command', ctx.domain, request]);
  let reply: JsonValue;
  try {
    reply = parseJson(out.trim());
  } catch {
    throw new CommandRefused('GenericError', `virsh qemu-monitor-command printed no QMP reply for ${command}`);
  }
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) throw new CommandRefused('GenericError', `unexpected reply to ${command}`);
  if ('error' in reply) {
    const e = reply.error;
    const cls = e !== null && typeof e === 'object' && !Array.isArray(e) && typeof e.class === 'string' ? e.class : 'GenericError';
    const desc = e !== null && typeof e === 'object' && !Array.isArray(e) && typeof e.desc === 'string' ? e.desc : stringifyJson(e);
    throw new CommandRefused(cls, desc);
  }
  return reply.return ?? {};
}
