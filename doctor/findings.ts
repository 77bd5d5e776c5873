/**
 * What `emailng doctor` reports: one finding per check, each either fine,
 * not applicable here, or a problem carrying the fix an administrator
 * should apply. A problem without a fix cannot be built (the type requires
 * it). Also the two renderings (text for people, JSON for scripts) and the
 * exit status: 0 when nothing needs attention, 1 otherwise.
 */

export type Finding =
  | { readonly check: string; readonly status: "ok" | "skip"; readonly message: string }
  | {
      readonly check: string;
      readonly status: "warn" | "fail";
      readonly message: string;
      readonly fix: string;
    };

export type FindingStatus = Finding["status"];

export const ok = (check: string, message: string): Finding => ({ check, status: "ok", message });
export const skip = (check: string, message: string): Finding => ({ check, status: "skip", message });
export const warn = (check: string, message: string, fix: string): Finding => ({
  check,
  status: "warn",
  message,
  fix,
});
export const fail = (check: string, message: string, fix: string): Finding => ({
  check,
  status: "fail",
  message,
  fix,
});

/** A warning or a failure: something to act on. */
export function needsAttention(finding: Finding): boolean {
  return finding.status === "warn" || finding.status === "fail";
}

/** 0 when nothing needs attention, 1 otherwise. */
export function doctorExitStatus(findings: readonly Finding[]): 0 | 1 {
  return findings.some(needsAttention) ? 1 : 0;
}

const LABEL: Record<FindingStatus, string> = { ok: "ok  ", skip: "skip", warn: "WARN", fail: "FAIL" };

/** One line per finding, its fix indented under it; a summary line at the end. */
export function formatFindingsText(findings: readonly Finding[]): string {
  let text = "";
  for (const finding of findings) {
    text += `${LABEL[finding.status]} ${finding.check}: ${finding.message}\n`;
    if (finding.status === "warn" || finding.status === "fail") text += `     fix: ${finding.fix}\n`;
  }
  const count = (status: FindingStatus) => findings.filter((finding) => finding.status === status).length;
  text += `${count("fail")} failed, ${count("warn")} warnings, ${count("ok")} ok, ${count("skip")} skipped\n`;
  return text;
}

export function findingsJson(findings: readonly Finding[]): {
  ok: boolean;
  findings: readonly Finding[];
} {
  return { ok: doctorExitStatus(findings) === 0, findings };
}
