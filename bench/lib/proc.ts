/**
 * What the runner reads about a server under test from /proc: the process
 * and its descendants (Postfix-style and pre-forking daemons answer from
 * children), their resident memory (VmRSS, summed), the main process's peak
 * (VmHWM) and their CPU time (utime + stime), so each measurement can say
 * how much memory the server held and how much CPU one request cost it.
 */
import { readdirSync, readFileSync } from "node:fs";

/** Linux reports CPU times in clock ticks; 100 per second on every architecture Debian ships. */
const TICKS_PER_SECOND = 100;

function readStat(pid: number): { ppid: number; ticks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** The process and every live descendant. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid);
    if (list === undefined) children.set(stat.ppid, [Number(entry)]);
    else list.push(Number(entry));
  }
  const tree: number[] = [];
  const pending = [root];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
      readFileSync(`/proc/${pid}/status`, "utf8"),
    );
    return match === null ? 0 : Number(match[1]);
  } catch {
    return 0;
  }
}

export function rssMb(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + statusKb(pid, "VmRSS"), 0) / 1024;
}

export function peakRssMb(pid: number): number {
  return statusKb(pid, "VmHWM") / 1024;
}

export function cpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0) / TICKS_PER_SECOND;
}

/** Samples the tree's RSS and CPU while a measurement runs. */
export class ProcessSampler {
  private timer: NodeJS.Timeout | undefined;
  private maxRss = 0;
  private readonly startCpu: number;
  private pids: number[];

  constructor(
    private readonly root: number,
    intervalMs = 250,
  ) {
    this.pids = processTree(root);
    this.startCpu = cpuSeconds(this.pids);
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    this.pids = processTree(this.root);
    this.maxRss = Math.max(this.maxRss, rssMb(this.pids));
  }

  /** Stops sampling: largest RSS seen, the root's VmHWM, CPU seconds used by the tree meanwhile. */
  finish(): { maxRssMb: number; peakRssMb: number; cpuSeconds: number } {
    clearInterval(this.timer);
    this.sample();
    return {
      maxRssMb: this.maxRss,
      peakRssMb: peakRssMb(this.root),
      cpuSeconds: Math.max(0, cpuSeconds(this.pids) - this.startCpu),
    };
  }
}
