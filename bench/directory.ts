/**
 * Directory benchmark (issue 3), run with `npm run bench:directory [-- --users N --groups M]`.
 *
 * 1. A private slapd loaded with a generated directory (default 100,000
 *    users, 5,000 groups of 50 members, every tenth group nesting another).
 * 2. `emailng sync run` (the built CLI, its own process) against it, under
 *    /usr/bin/time: wall time and peak RSS. Twice: the first run publishes,
 *    the second finds nothing changed. Then an incremental run.
 * 3. What sites use instead, on the same slapd: the cron job's `ldapsearch`
 *    dump (paged, as the old scripts did) and `postmap` of a 100,000-line
 *    relay_recipients file.
 * 4. A fresh process loading the snapshot (readSnapshot + Resolver), its RSS,
 *    and resolver lookups from memory (mean, p50, p99 per lookup).
 *
 * Results are printed and written to bench/results/directory.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { generateDirectoryLdif } from "../test/harness/directory-ldif.js";
import { makeTempDir, removeTempDir, runCommand } from "../test/harness/process.js";
import { startSlapd } from "../test/harness/slapd.js";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const cli = join(root, "dist-bench/cli/main.js");
const loader = join(root, "dist-bench/bench/snapshot-load.js");

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} needs a positive whole number`);
  return value;
}

interface Timed {
  seconds: number;
  maxRssMb: number;
  code: number | null;
  output: string;
}

/** Runs a command under GNU time; returns wall seconds and peak RSS. */
async function timed(file: string, args: string[], timeoutMs = 600_000): Promise<Timed> {
  const result = await runCommand("/usr/bin/time", ["-f", "TIME %e %M", file, ...args], { timeoutMs });
  const line = /TIME ([\d.]+) (\d+)\s*$/.exec(result.stderr);
  if (line === null) throw new Error(`no timing from ${file}: ${result.stderr.slice(-500)}`);
  return {
    seconds: Number(line[1]),
    maxRssMb: Math.round(Number(line[2]) / 1024),
    code: result.code,
    output: `${result.stdout}${result.stderr.replace(/TIME [\d.]+ \d+\s*$/, "")}`,
  };
}

async function main(): Promise<void> {
  const users = argument("users", 100_000);
  const groups = argument("groups", 5_000);
  const work = makeTempDir("emailng-bench-directory-");
  const results: Record<string, unknown> = {
    users,
    groups,
    node: process.version,
    date: new Date().toISOString(),
  };
  try {
    const generated = await generateDirectoryLdif({ path: join(work, "directory.ldif"), users, groups });
    console.log(`generated ${users} users, ${groups} groups`);
    const slapd = await startSlapd({ ldif: [generated.path], logLevel: "none", startTimeoutMs: 900_000 });
    try {
      results["slapaddSeconds"] = slapd.loadMs / 1000;
      console.log(`slapd loaded in ${(slapd.loadMs / 1000).toFixed(1)} s`);
      writeFileSync(join(work, "bind-password"), `${slapd.readerPassword}\n`, { mode: 0o600 });
      const writeConfig = (name: string, snapshot: string): string => {
        const path = join(work, name);
        writeFileSync(
          path,
          [
            "[log]",
            'level = "warn"',
            "[ldap]",
            `urls = ["${slapd.url}"]`,
            `bind_dn = "${slapd.readerDn}"`,
            `bind_password_file = "${join(work, "bind-password")}"`,
            `base_dn = "${slapd.baseDn}"`,
            'timeout = "60s"',
            "page_size = 1000",
            "[snapshot]",
            `path = "${join(work, snapshot)}"`,
            "[directory]",
            'primary_domain = "cs.example.org"',
            'alias_domains = ["example.org"]',
            "[sync]",
            `lock_file = "${join(work, `${snapshot}.lock`)}"`,
            "",
          ].join("\n"),
        );
        return path;
      };
      const configPath = writeConfig("emailng.toml", "snapshot.sqlite");
      const sync = async (label: string, key: string, args: string[], nodeFlags: string[] = []) => {
        const run = await timed(process.execPath, [...nodeFlags, cli, "sync", "run", ...args]);
        console.log(`${label}: ${run.seconds} s, peak RSS ${run.maxRssMb} MB`);
        if (run.code !== 0) throw new Error(`${label} failed:\n${run.output}`);
        results[key] = { seconds: run.seconds, maxRssMb: run.maxRssMb, nodeFlags };
        return run;
      };

      const first = await sync("sync run (first publish)", "syncPublish", ["--config", configPath]);
      console.log(first.output.split("\n").slice(0, 5).join("\n"));
      await sync(
        "sync run (first publish, node --max-old-space-size=384 as in the systemd units)",
        "syncPublishCappedHeap",
        ["--config", writeConfig("capped.toml", "capped.sqlite")],
        ["--max-old-space-size=384"],
      );
      await sync("sync run (full, nothing changed)", "syncUnchanged", ["--config", configPath]);
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      await sync("sync run (full, nothing changed, records the watermark)", "syncUnchanged2", [
        "--config",
        configPath,
      ]);
      await sync("sync run --incremental (nothing changed)", "syncIncrementalNoChange", [
        "--incremental",
        "--config",
        configPath,
      ]);
      const changed = generated.uidOf(4242);
      await runCommand(
        "/usr/bin/ldapmodify",
        ["-x", "-H", slapd.url, "-D", slapd.adminDn, "-w", slapd.adminPassword],
        {
          input: `dn: uid=${changed},ou=people,${slapd.baseDn}\nchangetype: modify\nreplace: mailUserStatus\nmailUserStatus: inactive\n-\n`,
        },
      );
      const incremental = await sync(
        "sync run --incremental (one user deactivated)",
        "syncIncrementalChange",
        ["--incremental", "--config", configPath],
      );
      console.log(incremental.output.split("\n").slice(0, 4).join("\n"));

      const dump = await timed("/usr/bin/ldapsearch", [
        "-x",
        "-LLL",
        "-H",
        slapd.url,
        "-D",
        slapd.readerDn,
        "-w",
        slapd.readerPassword,
        "-b",
        slapd.baseDn,
        "-E",
        "pr=1000/noprompt",
        "(|(objectClass=inetMailUser)(objectClass=inetMailGroup))",
      ]);
      console.log(
        `ldapsearch dump (the cron job's first step): ${dump.seconds} s, peak RSS ${dump.maxRssMb} MB`,
      );
      results["ldapsearchDump"] = { seconds: dump.seconds, maxRssMb: dump.maxRssMb };

      const mapFile = join(work, "relay_recipients");
      writeFileSync(
        mapFile,
        Array.from({ length: users }, (_, index) => `${generated.mailOf(index)} OK\n`).join(""),
      );
      const postmap = await timed("/usr/sbin/postmap", [`hash:${mapFile}`]);
      console.log(`postmap hash: of ${users} lines (the cron job's last step): ${postmap.seconds} s`);
      results["postmapHash"] = { seconds: postmap.seconds, maxRssMb: postmap.maxRssMb };
    } finally {
      await slapd.destroy();
    }

    const load = await runCommand(process.execPath, [loader, join(work, "snapshot.sqlite"), String(users)], {
      timeoutMs: 300_000,
    });
    if (load.code !== 0) throw new Error(`snapshot-load failed: ${load.stderr}`);
    const loaded = JSON.parse(load.stdout) as Record<string, unknown>;
    console.log("snapshot load and lookups:", loaded);
    results["snapshotLoad"] = loaded;

    mkdirSync(join(root, "bench/results"), { recursive: true });
    writeFileSync(join(root, "bench/results/directory.json"), `${JSON.stringify(results, null, 2)}\n`);
    console.log("written to bench/results/directory.json");
  } finally {
    removeTempDir(work);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
