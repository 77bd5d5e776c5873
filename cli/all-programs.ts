/**
 * Every program of the emailng command, imported at once: the default of
 * buildCli for tests and in-process use, where start-up time does not
 * matter. The `emailng` process itself loads only the program its command
 * line names (cli/programs.ts loadPrograms); a test checks that both lists
 * hold the same programs in the same order.
 */
import { DOCTOR_PROGRAMS } from "../doctor/program.js";
import { POLICYD_PROGRAMS } from "../policyd/program.js";
import { QUOTAD_PROGRAMS } from "../quotad/program.js";
import { SIEVE_PROGRAMS } from "../sieve-tools/program.js";
import { SYNC_AGENT_PROGRAMS } from "../sync-agent/program.js";
import { verifydProgram } from "../verifyd/program.js";
import type { ProgramDefinition } from "./programs.js";

export const PROGRAMS: readonly ProgramDefinition[] = [
  verifydProgram,
  ...POLICYD_PROGRAMS,
  ...QUOTAD_PROGRAMS,
  ...SIEVE_PROGRAMS,
  ...SYNC_AGENT_PROGRAMS,
  ...DOCTOR_PROGRAMS,
];
