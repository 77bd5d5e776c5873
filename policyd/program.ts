/**
 * The `emailng` commands policyd provides (issue 5). The list is empty until
 * the daemon and its admin commands land; cli/programs.ts already includes it.
 */
import type { ProgramDefinition } from "../cli/programs.js";

export const POLICYD_PROGRAMS: readonly ProgramDefinition[] = [];
