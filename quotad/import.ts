/**
 * Bootstrap and refresh of the usage store from `doveadm -f tab quota get
 * -A`, whose output (Dovecot 2.3.19) reads:
 *
 *     Username<TAB>Quota name<TAB>Type<TAB>Value<TAB>Limit<TAB>%
 *     alice<TAB>User quota<TAB>STORAGE<TAB>5<TAB>1024<TAB>0
 *     alice<TAB>User quota<TAB>MESSAGE<TAB>2<TAB>-<TAB>0
 *
 * STORAGE is in KiB, rounded up by doveadm, so imported usage can be up to
 * 1023 bytes above the real one (never below: it never lets a full mailbox
 * look emptier than it is); MESSAGE is a count. quota_clone copies the
 * first quota root only, so only the first root listed for a user is taken.
 * Columns are found by their header names, so added columns do not matter.
 *
 * All or nothing: one line that does not parse makes the whole input
 * refused (doveadm output is machine-made; a broken line means the wrong
 * command or a truncated file), with every problem named by line. Pure.
 */
import { normaliseUsername, type UsageUpdate } from "./usage-store.js";

export type DoveadmQuotaParse =
  | { ok: true; updates: UsageUpdate[]; skippedRoots: number }
  | { ok: false; problems: string[] };

const REQUIRED = ["Username", "Quota name", "Type", "Value"] as const;
/** Reported problems are capped; the input is refused either way. */
const MAX_PROBLEMS = 20;

export function parseDoveadmQuota(text: string): DoveadmQuotaParse {
  const lines = text.split("\n").map((line) => line.replace(/\r$/, ""));
  const headerIndex = lines.findIndex((line) => line.trim() !== "");
  if (headerIndex < 0) return { ok: false, problems: ["the input is empty"] };
  const header = (lines[headerIndex] as string).split("\t");
  const column = Object.fromEntries(REQUIRED.map((name) => [name, header.indexOf(name)])) as Record<
    (typeof REQUIRED)[number],
    number
  >;
  const missing = REQUIRED.filter((name) => column[name] < 0);
  if (missing.length > 0) {
    return {
      ok: false,
      problems: [
        `line ${headerIndex + 1}: not the header of "doveadm -f tab quota get -A" (missing ${missing.join(", ")})`,
      ],
    };
  }

  const problems: string[] = [];
  const firstRoot = new Map<string, string>();
  const byUser = new Map<string, UsageUpdate>();
  let skippedRoots = 0;
  for (let index = headerIndex + 1; index < lines.length; index++) {
    const line = lines[index] as string;
    if (line.trim() === "") continue;
    const where = `line ${index + 1}`;
    const fields = line.split("\t");
    if (fields.length !== header.length) {
      problems.push(`${where}: ${fields.length} fields where the header has ${header.length}`);
      if (problems.length >= MAX_PROBLEMS) break;
      continue;
    }
    const username = normaliseUsername(fields[column.Username] as string);
    const root = fields[column["Quota name"]] as string;
    const type = fields[column.Type] as string;
    const valueText = fields[column.Value] as string;
    const value = /^[0-9]{1,12}$/.test(valueText) ? Number(valueText) : null;
    if (username === null) problems.push(`${where}: the user name is empty or contains spaces or controls`);
    else if (type !== "STORAGE" && type !== "MESSAGE")
      problems.push(`${where}: unknown type ${JSON.stringify(type)}`);
    else if (value === null)
      problems.push(`${where}: value ${JSON.stringify(valueText)} is not a whole number`);
    if (problems.length >= MAX_PROBLEMS) break;
    if (username === null || value === null || (type !== "STORAGE" && type !== "MESSAGE")) continue;

    const first = firstRoot.get(username);
    if (first === undefined) firstRoot.set(username, root);
    else if (first !== root) {
      skippedRoots += 1;
      continue;
    }
    const update = byUser.get(username) ?? { username };
    if (type === "STORAGE") update.storageBytes = value * 1024;
    else update.messages = value;
    byUser.set(username, update);
  }
  if (problems.length > 0) return { ok: false, problems };
  if (byUser.size === 0) return { ok: false, problems: ["no quota lines after the header"] };
  return { ok: true, updates: [...byUser.values()], skippedRoots };
}
