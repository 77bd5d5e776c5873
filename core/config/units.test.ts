import { describe, expect, it } from "vitest";
import { duration, integer, parseDuration, parseSize, size } from "./units.js";

describe("parseDuration", () => {
  it.each([
    { input: "250ms", want: 250 },
    { input: "3s", want: 3000 },
    { input: "5m", want: 300_000 },
    { input: "2h", want: 7_200_000 },
    { input: "1d", want: 86_400_000 },
    { input: "0s", want: 0 },
    { input: "5", want: undefined },
    { input: "5 s", want: undefined },
    { input: "1.5s", want: undefined },
    { input: "-1s", want: undefined },
    { input: "1h30m", want: undefined },
    { input: "5S", want: undefined },
    { input: "", want: undefined },
  ])("$input → $want", ({ input, want }) => {
    expect(parseDuration(input)).toBe(want);
  });
});

describe("parseSize", () => {
  it.each([
    { input: "512", want: 512 },
    { input: "10K", want: 10 * 1024 },
    { input: "10M", want: 10 * 1024 * 1024 },
    { input: "1G", want: 1024 ** 3 },
    { input: "10k", want: undefined },
    { input: "10MB", want: undefined },
    { input: "1.5M", want: undefined },
    { input: "999999999999999G", want: undefined },
  ])("$input → $want", ({ input, want }) => {
    expect(parseSize(input)).toBe(want);
  });
});

describe("duration schema", () => {
  const schema = duration({ default: "5s", min: "100ms", max: "60s" });

  it.each([
    { name: "absent uses the default", input: undefined, want: 5000 },
    { name: "in bounds", input: "30s", want: 30_000 },
    { name: "surrounding spaces", input: " 20s ", want: 20_000 },
    { name: "exactly the maximum", input: "1m", want: 60_000 },
  ])("$name", ({ input, want }) => {
    expect(schema.parse(input)).toBe(want);
  });

  it.each([
    {
      name: "above max",
      input: "90s",
      message: "90s is above the maximum 60s",
      fix: "use a value between 100ms and 60s",
    },
    {
      name: "below min",
      input: "50ms",
      message: "50ms is below the minimum 100ms",
      fix: "use a value between 100ms and 60s",
    },
    {
      name: "not a duration",
      input: "5 minutes",
      message: '"5 minutes" is not a duration',
      fix: 'write a whole number followed by one unit: ms, s, m, h or d, e.g. "30s"',
    },
    {
      name: "bare number",
      input: 30,
      message: 'expected a duration string like "30s", got 30',
      fix: 'write a whole number followed by one unit: ms, s, m, h or d, e.g. "30s"',
    },
  ])("$name", ({ input, message, fix }) => {
    const result = schema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues).toMatchObject([{ message, params: { fix } }]);
  });

  it("refuses bounds that contradict the default, at definition time", () => {
    expect(() => duration({ default: "2m", min: "1s", max: "1m" })).toThrow(/out of bounds/);
  });
});

describe("size schema", () => {
  const schema = size({ default: "10M", min: "1K", max: "1G" });

  it.each([
    { input: undefined, want: 10 * 1024 * 1024 },
    { input: "512K", want: 512 * 1024 },
    { input: 4096, want: 4096 },
  ])("$input → $want", ({ input, want }) => {
    expect(schema.parse(input)).toBe(want);
  });

  it.each([
    { input: "2G", message: "2G is above the maximum 1G" },
    { input: "100", message: "100 is below the minimum 1K" },
    { input: "ten", message: '"ten" is not a size' },
    { input: -5, message: 'expected a size string like "10M", got -5' },
  ])("$input is refused", ({ input, message }) => {
    expect(schema.safeParse(input).error?.issues[0]?.message).toBe(message);
  });
});

describe("integer schema", () => {
  const schema = integer({ default: 500, min: 1, max: 10_000 });

  it.each([
    { input: undefined, want: 500, message: undefined },
    { input: 20, want: 20, message: undefined },
    { input: 0, want: undefined, message: "0 is below the minimum 1" },
    { input: 10_001, want: undefined, message: "10001 is above the maximum 10000" },
    { input: 2.5, want: undefined, message: "expected a whole number, got 2.5" },
    { input: "20", want: undefined, message: 'expected a whole number, got "20"' },
  ])("$input", ({ input, want, message }) => {
    const result = schema.safeParse(input);
    expect(result.data).toBe(want);
    expect(result.error?.issues[0]?.message).toBe(message);
  });
});
