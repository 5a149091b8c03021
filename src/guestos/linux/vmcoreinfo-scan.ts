import type { PhysicalMemory } from '../memory';
import type { Vmcoreinfo } from './vmcoreinfo';

export async function findVmcoreinfoInRam(_mem: PhysicalMemory): Promise<Vmcoreinfo | undefined> {
  return undefined;
}
