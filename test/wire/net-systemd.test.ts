/**
 * systemd socket activation, end to end in a child process: python3 plays
 * systemd (binds 127.0.0.1:0, puts the listening socket on fd 3, sets
 * LISTEN_PID to its own pid, which execve keeps, LISTEN_FDS and
 * LISTEN_FDNAMES) and execs node on net-systemd-child.ts compiled to a
 * temporary directory (Node 20 cannot run TypeScript itself). The test then
 * talks to the child, stops it with SIGTERM by pid and expects exit code 0.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenersFromSystemd } from "../../core/net/listeners.js";
import { connectLineClient } from "./net-fixtures.js";

const repository = resolve(import.meta.dirname, "../..");
const outDirectory = mkdtempSync(join(tmpdir(), "emailng-systemd-"));
let child: ChildProcess | undefined;

const PLAY_SYSTEMD = `
import os, socket, sys
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
if listener.fileno() != 3:
    os.dup2(listener.fileno(), 3)
os.set_inheritable(3, True)
print(listener.getsockname()[1], flush=True)
env = dict(os.environ, LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="echo")
os.execve(sys.argv[1], [sys.argv[1], sys.argv[2]], env)
`;

beforeAll(() => {
  execFileSync(
    join(repository, "node_modules/.bin/tsc"),
    [
      ...["--outDir", outDirectory, "--rootDir", repository, "--module", "nodenext"],
      ...["--moduleResolution", "nodenext", "--target", "es2022", "--skipLibCheck", "--types", "node"],
      join(repository, "test/wire/net-systemd-child.ts"),
    ],
    { cwd: repository, timeout: 60_000 },
  );
  // The compiled files must load as ESM and find the repository's packages.
  writeFileSync(join(outDirectory, "package.json"), '{ "type": "module" }\n');
  symlinkSync(join(repository, "node_modules"), join(outDirectory, "node_modules"));
});

afterAll(() => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, "SIGKILL");
  }
  rmSync(outDirectory, { recursive: true, force: true });
});

describe("systemd socket activation", () => {
  it("serves an inherited socket picked by name and stops cleanly on SIGTERM", async () => {
    const script = join(outDirectory, "test/wire/net-systemd-child.js");
    child = spawn("python3", ["-c", PLAY_SYSTEMD, process.execPath, script], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const running = child;
    const exited = new Promise<number | null>((done) => running.once("exit", (code) => done(code)));
    let stderr = "";
    running.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    const lines = createInterface({ input: running.stdout! })[Symbol.asyncIterator]();
    const nextLine = async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`child said nothing; stderr: ${stderr}`)), 15_000);
      });
      const line = await Promise.race([lines.next(), timeout]).finally(() => clearTimeout(timer));
      if (line.done) throw new Error(`child ended; stderr: ${stderr}`);
      return line.value;
    };

    const port = Number(await nextLine());
    const report = JSON.parse(await nextLine());
    expect(report.inherited).toEqual([{ kind: "inherited", fd: 3, name: "echo" }]);
    expect(report.leftInEnvironment).toEqual([]);
    expect(report.addresses).toEqual([
      { kind: "tcp", label: "systemd:echo", address: "127.0.0.1", port, family: "IPv4" },
    ]);

    const client = await connectLineClient({ host: "127.0.0.1", port });
    client.send("echo activated\n");
    expect(await client.nextLine()).toBe("OK activated");
    client.socket.destroy();

    process.kill(running.pid!, "SIGTERM");
    expect(await exited).toBe(0);
  });
});

describe("listenersFromSystemd", () => {
  it.each([
    {
      name: "two named sockets for our pid",
      env: { LISTEN_PID: "4242", LISTEN_FDS: "2", LISTEN_FDNAMES: "policy:socketmap" },
      want: [
        { kind: "inherited", fd: 3, name: "policy" },
        { kind: "inherited", fd: 4, name: "socketmap" },
      ],
    },
    {
      name: "missing names",
      env: { LISTEN_PID: "4242", LISTEN_FDS: "1" },
      want: [{ kind: "inherited", fd: 3, name: "unknown" }],
    },
    {
      name: "another process's sockets",
      env: { LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "x" },
      want: [],
    },
    { name: "no activation", env: {}, want: [] },
    { name: "a bad count", env: { LISTEN_PID: "4242", LISTEN_FDS: "many" }, want: [] },
  ])("reads $name and clears the variables", ({ env, want }) => {
    const copy: NodeJS.ProcessEnv = { ...env, PATH: "/bin" };
    expect(listenersFromSystemd(copy, 4242)).toEqual(want);
    expect(copy).toEqual({ PATH: "/bin" });
  });
});
