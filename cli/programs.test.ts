import { describe, expect, it } from "vitest";
import { PROGRAMS } from "./all-programs.js";
import { loadPrograms, PROGRAM_MODULES } from "./programs.js";

const firstWord = (name: string) => name.split(" ")[0]!;

describe("loadPrograms", () => {
  it.each([
    { name: "a Sieve command", args: ["sieve", "check", "rules.sieve"], want: ["sieve"] },
    {
      name: "policyd's admin command",
      args: ["policy", "explain", "--login", "x"],
      want: ["policyd", "policy"],
    },
    { name: "a daemon with its config", args: ["verifyd", "--config", "/etc/x.toml"], want: ["verifyd"] },
    { name: "the sync agent's cleanup", args: ["cleanup", "run"], want: ["sync", "cleanup"] },
    { name: "config check", args: ["config", "check"], want: [] },
    { name: "version", args: ["version"], want: [] },
    { name: "the demo", args: ["demo"], want: [] },
  ])("$name: only the programs it names", async ({ args, want }) => {
    const words = new Set((await loadPrograms(args)).map((program) => firstWord(program.name)));
    expect([...words].sort()).toEqual([...want].sort());
  });

  it.each([
    { name: "help", args: ["--help"] },
    { name: "no command", args: [] },
    { name: "an unknown word", args: ["frobnicate"] },
    { name: "the help command", args: ["help", "sieve"] },
  ])("$name: every program, in help order", async ({ args }) => {
    const programs = await loadPrograms(args);
    expect(programs).toHaveLength(PROGRAMS.length);
    for (const [index, program] of programs.entries()) expect(program).toBe(PROGRAMS[index]);
  });

  it("each module owns exactly the first words of its commands, and no word has two owners", async () => {
    const owners = new Map<string, number>();
    for (const module of PROGRAM_MODULES) {
      const words = new Set((await module.load()).map((program) => firstWord(program.name)));
      expect([...words].sort()).toEqual([...module.words].sort());
      for (const word of words) owners.set(word, (owners.get(word) ?? 0) + 1);
    }
    expect([...owners.values()].every((count) => count === 1)).toBe(true);
  });
});
