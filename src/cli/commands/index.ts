import type { Command } from 'commander';
import { register as registerQmp } from './qmp';
import { register as registerVerify } from './verify';

/**
 * Every vmpm subcommand registers itself through one function. Keep this list in the order the
 * README presents the commands: capture side first, then analysis, then maintenance.
 */
export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  registerQmp,
  registerVerify,
];
