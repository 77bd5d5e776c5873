/**
 * Unit tests of the doveadm quota output parser and of the report and
 * size formatting. The first table is `doveadm -f tab quota get -A` as
 * Dovecot 2.3.19 printed it for two users (one named by address, one by
 * login); the integration test feeds the real command's output.
 */
import { describe, expect, it } from "vitest";
import type { Directory } from "../core/directory/model.js";
import { testUser } from "../test/harness/directory-builders.js";
import type { QuotaSettings } from "./decision.js";
import { formatAge, formatBytes, percentOf } from "./format.js";
import { parseDoveadmQuota } from "./import.js";
import { buildReport, formatReportText } from "./report.js";

const CAPTURED = [
  "Username\tQuota name\tType\tValue\tLimit\t%",
  "alice@example.test\tUser quota\tSTORAGE\t1\t1024\t0",
  "alice@example.test\tUser quota\tMESSAGE\t2\t-\t0",
  "bob\tUser quota\tSTORAGE\t1\t2\t50",
  "bob\tUser quota\tMESSAGE\t1\t-\t0",
  "",
].join("\n");

describe("parseDoveadmQuota", () => {
  it("reads the captured output: KiB to bytes, message counts", () => {
    expect(parseDoveadmQuota(CAPTURED)).toEqual({
      ok: true,
      skippedRoots: 0,
      updates: [
        { username: "alice@example.test", storageBytes: 1024, messages: 2 },
        { username: "bob", storageBytes: 1024, messages: 1 },
      ],
    });
  });

  it("takes only the first quota root of a user (the one quota_clone copies), in any column order", () => {
    const text = [
      "Quota name\tUsername\tType\tValue\tLimit\t%\tExtra",
      "User quota\tCarol\tSTORAGE\t10\t100\t10\tx",
      "Archive\tCarol\tSTORAGE\t999\t-\t0\tx",
      "User quota\tCarol\tMESSAGE\t3\t-\t0\tx",
      "Archive\tCarol\tMESSAGE\t99\t-\t0\tx",
    ].join("\r\n");
    expect(parseDoveadmQuota(text)).toEqual({
      ok: true,
      skippedRoots: 2,
      updates: [{ username: "carol", storageBytes: 10_240, messages: 3 }],
    });
  });

  it.each([
    { name: "empty input", text: "", problem: "the input is empty" },
    {
      name: "not doveadm's header",
      text: "Quota name Type Value Limit %\nx",
      problem: "line 1: not the header",
    },
    { name: "header only", text: "Username\tQuota name\tType\tValue\tLimit\t%\n", problem: "no quota lines" },
    {
      name: "a line with too few fields",
      text: `${CAPTURED}carol\tUser quota\tSTORAGE\n`,
      problem: "line 6: 3 fields where the header has 6",
    },
    {
      name: "a value that is not a number",
      text: `${CAPTURED}carol\tUser quota\tSTORAGE\t-1\t5\t0\n`,
      problem: 'line 6: value "-1" is not a whole number',
    },
    {
      name: "an unknown type",
      text: `${CAPTURED}carol\tUser quota\tBYTES\t1\t5\t0\n`,
      problem: 'line 6: unknown type "BYTES"',
    },
    {
      name: "a user name with a space",
      text: `${CAPTURED}car ol\tUser quota\tSTORAGE\t1\t5\t0\n`,
      problem: "line 6: the user name is empty or contains spaces or controls",
    },
  ])("refuses the whole input for $name", ({ text, problem }) => {
    const parsed = parseDoveadmQuota(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems.join("\n")).toContain(problem);
  });
});

describe("formatting", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [4300, "4.2 KiB"],
    [10 * 1024 * 1024 + 1, "10 MiB"],
    [3 * 1024 ** 3, "3.0 GiB"],
  ])("formatBytes(%i) = %s", (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it("ages and shares", () => {
    expect(formatAge(null)).toBe("unknown age");
    expect(formatAge(5_000)).toBe("5s ago");
    expect(formatAge(3 * 60_000)).toBe("3m ago");
    expect(formatAge(5 * 3_600_000)).toBe("5h ago");
    expect(formatAge(9 * 86_400_000)).toBe("9d ago");
    expect(percentOf(950, 1000)).toBe(95);
    expect(percentOf(950, null)).toBeNull();
  });
});

describe("buildReport", () => {
  const NOW = Date.parse("2026-03-01T12:00:00Z");
  const settings: QuotaSettings = {
    defaultLimitBytes: 10_000,
    dovecotUsername: "login",
    groupPolicy: "all",
    maxDepth: 16,
    grace: { kind: "percent", percent: 10 },
    usageMaxAgeMs: 86_400_000,
    severalRecipients: "accept",
  };
  const directory: Directory = {
    domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
    users: [
      testUser("full", { quotaBytes: 1000 }),
      testUser("near", { quotaBytes: 1000 }),
      testUser("small", { quotaBytes: 1000 }),
      testUser("default"),
      testUser("old", { quotaBytes: 1000 }),
    ],
    groups: [],
  };
  const fresh = NOW - 60_000;
  const report = buildReport(
    [
      { username: "full", storageBytes: 1100, messages: 11, updatedAt: fresh },
      { username: "near", storageBytes: 950, messages: 9, updatedAt: fresh },
      { username: "small", storageBytes: 10, messages: 1, updatedAt: fresh },
      { username: "default", storageBytes: 9500, messages: 1, updatedAt: fresh },
      { username: "old", storageBytes: 5000, messages: 1, updatedAt: NOW - 2 * 86_400_000 },
      { username: "ghost", storageBytes: 7, messages: 1, updatedAt: fresh },
    ],
    directory,
    settings,
    NOW,
    { top: 3, nearPercent: 90 },
  );

  it("sorts users into over, near, top, stale and unknown", () => {
    expect(report.over.map((row) => [row.username, row.percent])).toEqual([["full", 110]]);
    expect(report.near.map((row) => [row.username, row.percent])).toEqual([
      ["default", 95],
      ["near", 95],
    ]);
    expect(report.top.map((row) => row.username)).toEqual(["default", "old", "full"]);
    // Stale usage is listed apart and never counted as over the limit.
    expect(report.stale.map((row) => row.username)).toEqual(["old"]);
    expect(report.notInDirectory).toEqual(["ghost"]);
    expect(report.records).toBe(6);
  });

  it("prints human sizes", () => {
    const text = formatReportText(report);
    expect(text).toContain(
      "Over their limit (refused) (1):\n  full: 1.1 KiB of 1000 B 110%, 11 messages, updated 1m ago\n",
    );
    expect(text).toContain("  old: 4.9 KiB of 1000 B 500%, 1 messages, updated 2d ago (stale)\n");
    expect(text).toContain("Not in the directory (1): ghost\n");
  });
});
