/** What the report says about the machine a run was made on. */
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";

export interface MachineDescription {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  os: string;
  kernel: string;
  node: string;
  /** 1-minute load average when the run started (others may be using the machine). */
  loadAverageAtStart: number;
}

function osName(): string {
  try {
    const match = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"));
    if (match !== null) return match[1]!;
  } catch {
    // not Linux
  }
  return process.platform;
}

export function describeMachine(): MachineDescription {
  const list = cpus();
  let model = list[0]?.model ?? "unknown";
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match !== null) model = match[1]!.trim();
  } catch {
    // keep os.cpus()'s name
  }
  const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
  return {
    cpuModel: model,
    cores: list.length,
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: osName(),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: Number(load),
  };
}

/** Stored with each suite's results: where, when and how it was measured. */
export interface RunInfo {
  machine: MachineDescription;
  command: string;
  date: string;
}
