import type { Command } from 'commander';
import { register as registerCapture } from './capture';
import { register as registerDemo } from './demo';
import { register as registerQmp } from './qmp';
import { register as registerWatch } from './watch';
import { register as registerState } from './state';
import { register as registerVerify } from './verify';
import { register as registerInfo } from './info';
import { register as registerRegs } from './regs';
import { register as registerMemmap } from './memmap';
import { register as registerRead } from './read';
import { register as registerSearch } from './search';
import { register as registerErrors } from './errors';
import { register as registerEvents } from './events';
import { register as registerDiff } from './diff';
import { register as registerReport } from './report';
import { register as registerSection } from './section';
import { register as registerSeal } from './seal';
import { register as registerTranslate } from './translate';
import { register as registerSymbol } from './symbol';
import { register as registerStack } from './stack';
import { register as registerKlog } from './klog';
import { register as registerSign } from './sign';
import { register as registerSlim } from './slim';
import { register as registerRedact } from './redact';
import { register as registerExport } from './export';
import { register as registerImport } from './import';

/**
 * Every vmpm subcommand registers itself through one function. Keep this list in the order the
 * README presents the commands: capture side first, then analysis, then maintenance.
 */
export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  registerDemo,
  registerCapture,
  registerQmp,
  registerWatch,
  registerState,
  registerInfo,
  registerRegs,
  registerMemmap,
  registerRead,
  registerSearch,
  registerTranslate,
  registerSymbol,
  registerStack,
  registerErrors,
  registerKlog,
  registerEvents,
  registerDiff,
  registerReport,
  registerSection,
  registerExport,
  registerImport,
  registerVerify,
  registerSeal,
  registerSign,
  registerSlim,
  registerRedact,
];
