// deploy/postfix and deploy/dovecot: the snippets parse with the real
// postconf and doveconf without a warning, and every socket and map name
// they reference is one emailng serves: a socket of a deploy/systemd socket
// unit feeding the right daemon, a map name verifyd answers, the dict name
// quotad's feed accepts. Timeouts are checked against the daemons' defaults.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import { parseDuration } from "../../core/config/units.js";
import { MAP_NAMES } from "../../verifyd/maps.js";
import { deployFile, masterEntries } from "../harness/deploy-render.js";
import { makeTempDir, removeTempDir, requireBinary, runCommand } from "../harness/process.js";

const DEPLOY = resolve(fileURLToPath(new URL("../../deploy/", import.meta.url)));
const POSTCONF = "/usr/sbin/postconf";
const DOVECONF = "/usr/bin/doveconf";
// Debian's master.cf, which the relay's master.cf lines are merged into.
const MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist";
// Where "unix:private/..." resolves: the queue directory.
const QUEUE_DIRECTORY = "/var/spool/postfix";

const work = makeTempDir("deploy-snippets-");
afterAll(() => removeTempDir(work));

const loaded = parseConfigText("");
if (!loaded.ok) throw new Error("the empty configuration must be valid");
const defaults = loaded.config;

/** ListenStream= of each socket unit, by the service it activates. */
function socketsByService(): Map<string, string[]> {
  const byService = new Map<string, string[]>();
  for (const name of readdirSync(join(DEPLOY, "systemd")).filter((file) => file.endsWith(".socket"))) {
    const text = deployFile(join("systemd", name));
    const listen = /^ListenStream=(.+)$/m.exec(text)?.[1];
    const service = /^Service=(.+)$/m.exec(text)?.[1];
    if (listen === undefined || service === undefined) throw new Error(`${name}: no ListenStream or Service`);
    byService.set(service, [...(byService.get(service) ?? []), listen]);
  }
  return byService;
}
const SOCKETS = socketsByService();
const socketsOf = (service: string) => SOCKETS.get(service) ?? [];

/** Debian's master.cf with the snippet's services replacing its own. */
function mergedMasterCf(snippet: string): string {
  const ours = masterEntries(snippet);
  const replaced = new Set(ours.map((entry) => entry.key));
  const kept = masterEntries(readFileSync(MASTER_CF_DIST, "utf8")).filter(
    (entry) => !replaced.has(entry.key),
  );
  return `${[...kept, ...ours].flatMap((entry) => entry.lines).join("\n")}\n`;
}

function postfixDir(name: string, mainCf: string, masterCf: string): string {
  const dir = join(work, name);
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  writeFileSync(join(dir, "main.cf"), mainCf);
  writeFileSync(join(dir, "master.cf"), masterCf);
  return dir;
}

async function postconf(args: string[]) {
  return runCommand(requireBinary(POSTCONF, "postfix"), args, { timeoutMs: 30_000 });
}

/** check_policy_service targets with their {attributes}, from postconf's view of a restriction list. */
function policyServices(value: string): { target: string; attributes: Map<string, string> }[] {
  const found: { target: string; attributes: Map<string, string> }[] = [];
  const pattern = /check_policy_service\s+(?:\{([^}]*)\}|(\S+?)(?:,|\s|$))/g;
  for (const match of value.matchAll(pattern)) {
    const parts = (match[1] ?? match[2] ?? "").split(",").map((part) => part.trim());
    const attributes = new Map<string, string>();
    for (const part of parts.slice(1)) {
      const [name, ...rest] = part.split("=");
      attributes.set(name ?? "", rest.join("="));
    }
    found.push({ target: parts[0] ?? "", attributes });
  }
  return found;
}

function policySocketPath(target: string): string {
  expect(target).toMatch(/^unix:/);
  const path = target.slice("unix:".length);
  return isAbsolute(path) ? path : join(QUEUE_DIRECTORY, path);
}

const socketmapReferences = (text: string) =>
  [...text.matchAll(/socketmap:unix:([^:\s,]+):([^\s,}]+)/g)].map((match) => ({
    path: match[1] ?? "",
    map: match[2] ?? "",
  }));

describe.each([
  { name: "relay", main: "postfix/relay-main.cf", master: "postfix/relay-master.cf" },
  { name: "backend", main: "postfix/backend-main.cf", master: undefined },
])("deploy/$main", ({ name, main, master }) => {
  const masterCf = () =>
    master === undefined ? readFileSync(MASTER_CF_DIST, "utf8") : mergedMasterCf(deployFile(master));

  it("passes postconf -n and -M without a warning", async () => {
    expect(existsSync(MASTER_CF_DIST), `${MASTER_CF_DIST} (Debian package postfix)`).toBe(true);
    const dir = postfixDir(name, deployFile(main), masterCf());
    for (const args of [["-n"], ["-M"]]) {
      const result = await postconf(["-c", dir, ...args]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
    }
  });

  it("is checked for real: a misspelt parameter in it makes postconf warn", async () => {
    const dir = postfixDir(`${name}-canary`, `${deployFile(main)}relay_recipient_mapz = x\n`, masterCf());
    const result = await postconf(["-c", dir, "-n"]);
    expect(result.stderr).toContain("unused parameter: relay_recipient_mapz");
  });

  it("uses only verifyd's socket and map names", async () => {
    const dir = postfixDir(name, deployFile(main), masterCf());
    const settings = (await postconf(["-c", dir, "-n"])).stdout;
    const references = socketmapReferences(settings);
    expect(references.length).toBeGreaterThan(0);
    for (const reference of references) {
      expect(socketsOf("emailng-verifyd.service")).toContain(reference.path);
      expect(MAP_NAMES).toContain(reference.map);
    }
  });
});

describe("deploy/postfix/relay-main.cf", () => {
  const relayDir = () =>
    postfixDir(
      "relay",
      deployFile("postfix/relay-main.cf"),
      mergedMasterCf(deployFile("postfix/relay-master.cf")),
    );
  const relaySettings = async () =>
    (await postconf(["-c", relayDir(), "-n"])).stdout.split("\n").reduce((map, line) => {
      const at = line.indexOf(" = ");
      if (at > 0) map.set(line.slice(0, at), line.slice(at + 3));
      return map;
    }, new Map<string, string>());

  it("asks verifyd every map it serves", async () => {
    const settings = await relaySettings();
    const maps = new Set(socketmapReferences([...settings.values()].join("\n")).map((ref) => ref.map));
    expect([...maps].sort()).toEqual([...MAP_NAMES].sort());
    expect(settings.get("relay_recipient_maps")).toMatch(/socketmap:unix:\S+:recipient$/);
    expect(settings.get("virtual_alias_maps")).toMatch(/socketmap:unix:\S+:alias$/);
  });

  it.each([
    ["smtpd_recipient_restrictions", "DEFER_IF_PERMIT"],
    ["smtpd_end_of_data_restrictions", "DUNNO"],
  ])("%s calls quotad then policyd, default_action %s, on their sockets", async (list, action) => {
    const settings = await relaySettings();
    const services = policyServices(settings.get(list) ?? "");
    expect(services.map((service) => policySocketPath(service.target))).toEqual([
      ...socketsOf("emailng-quotad.service").filter((path) => path.startsWith(QUEUE_DIRECTORY)),
      ...socketsOf("emailng-policyd.service"),
    ]);
    for (const service of services) expect(service.attributes.get("default_action")).toBe(action);
  });

  it("gives each policy service a timeout above the daemon's request_timeout, and only attributes Postfix knows", async () => {
    const settings = await relaySettings();
    const services = [
      ...policyServices(settings.get("smtpd_recipient_restrictions") ?? ""),
      ...policyServices(settings.get("smtpd_end_of_data_restrictions") ?? ""),
    ];
    expect(services).toHaveLength(4);
    for (const service of services) {
      const timeout = parseDuration(service.attributes.get("timeout") ?? "");
      expect(timeout).toBeDefined();
      expect(timeout).toBeGreaterThan(defaults.policyd.request_timeout);
      expect(timeout).toBeGreaterThan(defaults.quotad.request_timeout);
      // Each {name=value} is the per-service form of smtpd_policy_service_<name>.
      for (const attribute of service.attributes.keys()) {
        const known = await postconf(["-d", `smtpd_policy_service_${attribute}`]);
        expect(known.stderr, attribute).toBe("");
        expect(known.code).toBe(0);
      }
    }
  });

  it("lets Postfix close idle policy connections before the daemons do", async () => {
    const idle = parseDuration((await relaySettings()).get("smtpd_policy_service_max_idle") ?? "");
    expect(idle).toBeDefined();
    expect(idle).toBeLessThan(defaults.policyd.idle_timeout);
    expect(idle).toBeLessThan(defaults.quotad.idle_timeout);
  });

  it("lets a group expand as far as verifyd expands it", async () => {
    const limit = Number((await relaySettings()).get("virtual_alias_expansion_limit"));
    expect(limit).toBeGreaterThanOrEqual(defaults.directory.max_expansion);
  });
});

describe("deploy/dovecot", () => {
  const quotadFeedSocket = socketsOf("emailng-quotad.service").find((path) => path.startsWith("/run/"));
  const verifydDictSocket = socketsOf("emailng-verifyd.service").find((path) => path.includes("dict"));

  async function doveconf(name: string, body: string) {
    const dir = join(work, name);
    mkdirSync(dir);
    const file = join(dir, "dovecot.conf");
    // The private layout of test/harness/dovecot.ts: nothing of /etc/dovecot is read.
    writeFileSync(
      file,
      `base_dir = ${dir}/run\nstate_dir = ${dir}/state\nlog_path = /dev/stderr\nssl = no\nprotocols = imap\n${body}`,
    );
    return runCommand(requireBinary(DOVECONF, "dovecot-core"), ["-c", file, "-n"], { timeoutMs: 30_000 });
  }

  it("backend-23.conf parses with doveconf -n, and names quotad's feed socket and dict name", async () => {
    const result = await doveconf("dovecot23", `!include ${join(DEPLOY, "dovecot", "backend-23.conf")}\n`);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(quotadFeedSocket).toBeDefined();
    expect(result.stdout).toContain(
      `quota_clone_dict = proxy:${quotadFeedSocket}:${defaults.quotad.feed.dict_name}`,
    );
    expect(result.stdout).toMatch(
      /passdb \{\s+args = \/etc\/dovecot\/dict-emailng\.conf\.ext\s+driver = dict/,
    );
    expect(result.stdout).toMatch(
      /userdb \{\s+args = \/etc\/dovecot\/dict-emailng\.conf\.ext\s+driver = dict/,
    );
    expect(result.stdout).toMatch(/mail_plugins = .*quota quota_clone/);
  });

  it("is checked for real: a misspelt setting makes doveconf fail", async () => {
    const result = await doveconf(
      "dovecot23-canary",
      `!include ${join(DEPLOY, "dovecot", "backend-23.conf")}\nquota_clone_dictt = x\n`,
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("quota_clone_dictt");
  });

  it("dict-emailng.conf.ext points at verifyd's dict socket with the auth dict", () => {
    const text = deployFile("dovecot/dict-emailng.conf.ext");
    expect(verifydDictSocket).toBeDefined();
    expect(text).toMatch(new RegExp(`^uri = proxy:${verifydDictSocket}:auth$`, "m"));
    expect(text).toMatch(/key = passdb\/%u/);
    expect(text).toMatch(/key = userdb\/%u/);
  });

  it("backend-24.conf names quotad's feed socket and dict name", () => {
    const text = deployFile("dovecot/backend-24.conf");
    expect(text).toMatch(new RegExp(`^\\s*dict_proxy_socket_path = ${quotadFeedSocket}$`, "m"));
    expect(text).toMatch(new RegExp(`^\\s*dict_proxy_name = ${defaults.quotad.feed.dict_name}$`, "m"));
    expect(text).toMatch(/^passdb passwd-file \{/m);
    expect(text).toMatch(/^userdb passwd-file \{/m);
  });
});
