/**
 * The `emailng sieve …` commands sieve-tools provides (issue 7): check,
 * render-global, vacation, forward, filter, test and the ManageSieve client
 * (put, get, list, activate, delete, rename). The list is empty until the
 * commands land; cli/programs.ts already includes it.
 */
import type { ProgramDefinition } from "../cli/programs.js";

export const SIEVE_PROGRAMS: readonly ProgramDefinition[] = [];
