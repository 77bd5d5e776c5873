// Writes a synthetic directory in the cs.example.org model (see
// test/fixtures/README in shared/fixtures) for load and scale tests: N people
// under ou=people and M groups under ou=groups, following mail-schema.ldif
// exactly like the hand-written sample. It holds no suffix or OU entries, so
// it is loaded after sample-directory.ldif (startSlapd({ ldif: [path] })).
// The output is deterministic for a given seed, so a failing test can be
// reproduced; passwords are `pw-<uid>` as {SSHA} like in the sample.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { BASE_DN } from "./slapd.js";

export interface GeneratedDirectoryOptions {
  /** Where to write the LDIF. */
  path: string;
  users: number;
  groups: number;
  /** Members per group (memberUid), taken round-robin from the users. */
  membersPerGroup?: number;
  /** Changes names, quotas and statuses; the same seed gives the same file. */
  seed?: number;
}

export interface GeneratedDirectory {
  path: string;
  users: number;
  groups: number;
  /** Uid of the i-th generated person (0-based), so tests can pick known entries. */
  uidOf(index: number): string;
  /** Primary address of the i-th generated person. */
  mailOf(index: number): string;
  /** Common name of the j-th generated group (0-based). */
  groupOf(index: number): string;
}

const FIRST_NAMES = [
  "Nikos",
  "Eleni",
  "Giannis",
  "Katerina",
  "Dimitris",
  "Sofia",
  "Kostas",
  "Anna",
  "Petros",
];
const LAST_NAMES = ["Alexiou", "Georgiou", "Ioannou", "Markou", "Pappas", "Stavrou", "Vasileiou", "Zervas"];
const EMPLOYEE_TYPES = ["student", "student", "student", "pg", "staff", "faculty"];
const DOMAIN = "cs.example.org";

/** Student-number style uids well above the sample's csd47xx, so they never collide with it. */
function uidOf(index: number): string {
  return `csd${100000 + index}`;
}

function groupOf(index: number): string {
  return `gen-group-${index}`;
}

/** A small deterministic PRNG (mulberry32): enough to vary the data, no dependency. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(items: readonly T[], next: () => number): T {
  return items[Math.floor(next() * items.length)] as T;
}

/** The {SSHA} scheme slapd verifies: base64(sha1(password + salt) + salt). */
function sshaHash(password: string, salt: Buffer): string {
  const digest = createHash("sha1").update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
}

function personEntry(index: number, next: () => number): string {
  const uid = uidOf(index);
  const first = pick(FIRST_NAMES, next);
  const last = pick(LAST_NAMES, next);
  const salt = Buffer.alloc(4);
  salt.writeUInt32BE(index);
  const lines = [
    `dn: uid=${uid},ou=people,${BASE_DN}`,
    "objectClass: top",
    "objectClass: person",
    "objectClass: organizationalPerson",
    "objectClass: inetOrgPerson",
    "objectClass: posixAccount",
    "objectClass: inetMailUser",
    `uid: ${uid}`,
    `cn: ${first} ${last}`,
    `sn: ${last}`,
    `givenName: ${first}`,
    `employeeType: ${pick(EMPLOYEE_TYPES, next)}`,
    `uidNumber: ${100000 + index}`,
    "gidNumber: 2004",
    `homeDirectory: /home/${uid}`,
    "loginShell: /bin/bash",
    `userPassword: ${sshaHash(`pw-${uid}`, salt)}`,
    `mail: ${uid}@${DOMAIN}`,
    // The index keeps the lastname.firstname address unique, as the
    // registrar does for homonyms with a digit.
    `mailAlternateAddress: ${last.toLowerCase()}.${first.toLowerCase()}${index}@${DOMAIN}`,
  ];
  const roll = next();
  if (roll < 0.7) lines.push(`mailQuota: ${(1 + Math.floor(next() * 4)) * 1073741824}`);
  if (roll > 0.97) lines.push("mailUserStatus: inactive");
  else lines.push("mailUserStatus: active");
  if (roll > 0.9 && roll <= 0.93) lines.push(`mailForwardingAddress: ${uid}@elsewhere.example`);
  return `${lines.join("\n")}\n\n`;
}

function groupEntry(index: number, users: number, membersPerGroup: number): string {
  const cn = groupOf(index);
  const lines = [
    `dn: cn=${cn},ou=groups,${BASE_DN}`,
    "objectClass: top",
    "objectClass: posixGroup",
    "objectClass: inetMailGroup",
    `cn: ${cn}`,
    `gidNumber: ${300000 + index}`,
    `mail: ${cn}@${DOMAIN}`,
  ];
  const count = Math.min(membersPerGroup, users);
  for (let k = 0; k < count; k += 1) {
    lines.push(`memberUid: ${uidOf((index * membersPerGroup + k) % users)}`);
  }
  // Every tenth group nests the previous one, so nested expansion has work to do.
  if (index > 0 && index % 10 === 0) lines.push(`member: cn=${groupOf(index - 1)},ou=groups,${BASE_DN}`);
  lines.push("mailUserStatus: active");
  return `${lines.join("\n")}\n\n`;
}

/** Streams the LDIF to disk (10,000 people is a few MB; no need to hold it twice). */
export async function generateDirectoryLdif(options: GeneratedDirectoryOptions): Promise<GeneratedDirectory> {
  const next = random(options.seed ?? 1);
  const membersPerGroup = options.membersPerGroup ?? 50;
  const out = createWriteStream(options.path);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, "drain");
  };
  await write("# generated by test/harness/directory-ldif.ts; load after sample-directory.ldif\n\n");
  for (let i = 0; i < options.users; i += 1) await write(personEntry(i, next));
  for (let j = 0; j < options.groups; j += 1) await write(groupEntry(j, options.users, membersPerGroup));
  out.end();
  await once(out, "finish");
  return {
    path: options.path,
    users: options.users,
    groups: options.groups,
    uidOf,
    mailOf: (index) => `${uidOf(index)}@${DOMAIN}`,
    groupOf,
  };
}
