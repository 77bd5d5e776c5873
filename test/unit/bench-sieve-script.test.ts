/**
 * The generated Sieve script of bench/sieve-check.ts: exactly the lines
 * asked for, and valid for our checker with Pigeonhole's default
 * extensions (the benchmark also has sievec compile it before timing).
 */
import { describe, expect, it } from "vitest";
import { generateSieveScript } from "../../bench/workload/sieve-script.js";
import { checkScript } from "../../sieve-tools/check.js";

describe("generated Sieve script", () => {
  it.each([10, 11, 97, 10_000])("%i lines, valid", (lines) => {
    const script = generateSieveScript(lines);
    expect(script.split("\n")).toHaveLength(lines + 1);
    expect(script.endsWith("\n")).toBe(true);
    const result = checkScript(script);
    expect(result.diagnostics).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("uses every kind of rule", () => {
    const script = generateSieveScript(60);
    for (const piece of [
      ":contains",
      "envelope",
      ":regex",
      ':value "ge"',
      'address :is ["to", "cc"]',
      "vacation",
    ])
      expect(script).toContain(piece);
  });

  it("refuses fewer than 10 lines", () => {
    expect(() => generateSieveScript(9)).toThrow(RangeError);
  });
});
