/**
 * The `emailng` commands quotad provides (issue 6). The list is empty until
 * the daemon and `quota import|report|explain` land; cli/programs.ts already includes it.
 */
import type { ProgramDefinition } from "../cli/programs.js";

export const QUOTAD_PROGRAMS: readonly ProgramDefinition[] = [];
