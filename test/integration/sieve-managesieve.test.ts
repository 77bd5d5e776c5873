// The ManageSieve client and the `emailng sieve put|get|list|activate|
// delete|rename` and `check --server` commands against a real Dovecot 2.3
// managesieved (STARTTLS with a throw-away certificate, PLAIN login from a
// credentials file), and an uploaded, activated script filing the next LMTP
// delivery into the folder it names. Then small fake servers on loopback
// for what Dovecot never does: drop the connection, send garbage, say BYE,
// stay silent.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { ManageSieveClient, ManageSieveError } from "../../sieve-tools/managesieve-client.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { LineClient } from "../harness/line-client.js";
import { generateSelfSignedCertificate, type SelfSignedCertificate } from "../harness/tls.js";

let dovecot: Dovecot;
let certificate: SelfSignedCertificate;
let dir: string;
let configPath: string;
let port: number;

const USER = "alice";
const PASSWORD = "alice pässword";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "emailng-sieve-ms-"));
  certificate = await generateSelfSignedCertificate(dir, "localhost");
  dovecot = await startDovecot({
    protocols: ["lmtp", "sieve"],
    tls: certificate,
    users: [
      { name: USER, password: PASSWORD },
      { name: "bob", password: "bobpw" },
    ],
    conf: `protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_extensions = +editheader
  sieve_max_script_size = 64K
}
`,
  });
  port = dovecot.ports.sieve as number;
  const credentials = join(dir, "credentials");
  writeFileSync(credentials, `${USER}\n${PASSWORD}\n`);
  chmodSync(credentials, 0o600);
  configPath = join(dir, "emailng.toml");
  writeFileSync(
    configPath,
    `[sieve.managesieve]
host = "127.0.0.1"
port = ${port}
ca_file = "${certificate.certPath}"
credentials_file = "${credentials}"
timeout = "20s"
`,
  );
});

afterAll(async () => {
  await dovecot?.destroy();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const program = buildCli({ io: { out: (text) => (out += text), err: (text) => (err += text) } });
  try {
    await program.parseAsync([...args.slice(0, 2), "-c", configPath, ...args.slice(2)], { from: "user" });
    return { status: 0, out, err };
  } catch (error) {
    return { status: (error as { exitCode?: number }).exitCode ?? -1, out, err };
  }
}

function scriptFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function connect(): Promise<ManageSieveClient> {
  const { readFileSync } = await import("node:fs");
  return ManageSieveClient.connect({
    host: "127.0.0.1",
    port,
    starttls: "required",
    ca: readFileSync(certificate.certPath),
    timeoutMs: 20_000,
  });
}

describe("ManageSieve client against Dovecot's managesieved", () => {
  it("runs every command over STARTTLS and shows response codes", async () => {
    const client = await connect();
    try {
      expect(client.tls).toBe(true);
      expect(client.capabilities.has("STARTTLS")).toBe(false);
      expect(client.capabilities.get("SIEVE")?.split(" ")).toContain("editheader");
      await client.authenticatePlain(USER, PASSWORD);
      expect((await client.capability()).get("VERSION")).toBe("1.0");

      const script = new TextEncoder().encode('require "fileinto";\r\nfileinto "Lists";\r\n');
      expect((await client.haveSpace("lists", script.length)).status).toBe("OK");
      const tooBig = await client.haveSpace("lists", 1_000_000).catch((error: ManageSieveError) => error);
      expect(tooBig).toBeInstanceOf(ManageSieveError);
      expect((tooBig as ManageSieveError).code?.name).toBe("QUOTA/MAXSIZE");

      await client.putScript("lists", script);
      expect(await client.getScript("lists")).toEqual(script);
      expect((await client.checkScript(script)).status).toBe("OK");
      const bad = await client
        .checkScript(new TextEncoder().encode("if true"))
        .catch((error: ManageSieveError) => error);
      expect(bad).toBeInstanceOf(ManageSieveError);
      expect((bad as ManageSieveError).failure).toBe("no");
      expect((bad as ManageSieveError).message).toMatch(/^CHECKSCRIPT failed: NO:\n {4}line 1: error: /);

      await client.setActive("lists");
      expect(await client.listScripts()).toEqual([{ name: "lists", active: true }]);
      const active = await client.deleteScript("lists").catch((error: ManageSieveError) => error);
      expect((active as ManageSieveError).code?.name).toBe("ACTIVE");
      await client.renameScript("lists", "lists2");
      const missing = await client.getScript("lists").catch((error: ManageSieveError) => error);
      expect((missing as ManageSieveError).code?.name).toBe("NONEXISTENT");
      await client.setActive("");
      await client.deleteScript("lists2");
      expect(await client.listScripts()).toEqual([]);
    } finally {
      await client.logout();
    }
  });

  it("refuses to continue without TLS when the certificate is not trusted", async () => {
    const error = await ManageSieveClient.connect({
      host: "127.0.0.1",
      port,
      starttls: "required",
      timeoutMs: 20_000,
    }).catch((caught: ManageSieveError) => caught);
    expect(error).toBeInstanceOf(ManageSieveError);
    expect((error as ManageSieveError).failure).toBe("tls");
  });
});

describe("emailng sieve commands against managesieved", () => {
  it("put --activate: the next LMTP delivery is filed into the folder the script names", async () => {
    const file = scriptFile(
      "reports.sieve",
      'require ["fileinto", "mailbox"];\nif header :contains "subject" "weekly report" {\n  fileinto :create "Reports";\n}\n',
    );
    const put = await cli(["sieve", "put", file, "--activate"]);
    expect(put.err).toBe("");
    expect(put.status).toBe(0);
    expect(put.out).toContain("uploaded reports (");
    expect(put.out).toContain("activated reports");

    const list = await cli(["sieve", "list"]);
    expect(list.out).toBe("reports  (active)\n");
    const get = await cli(["sieve", "get", "reports"]);
    expect(get.out).toContain('fileinto :create "Reports";');

    const lmtp = await LineClient.open(dovecot.ports.lmtp as number);
    try {
      await lmtp.readUntil(/^220 /);
      for (const [line, reply] of [
        ["LHLO client.test", /^250 /],
        ["MAIL FROM:<boss@example.org>", /^250 /],
        [`RCPT TO:<${USER}>`, /^250 /],
        ["DATA", /^354 /],
      ] as const) {
        lmtp.send(`${line}\r\n`);
        await lmtp.readUntil(reply);
      }
      lmtp.send("From: boss@example.org\r\nSubject: the weekly report\r\n\r\nnumbers\r\n.\r\n");
      expect(await lmtp.readUntil(/^\d{3} /)).toMatch(/^250 /m);
      lmtp.send("QUIT\r\n");
    } finally {
      lmtp.close();
    }
    const folder = join(dovecot.mailDir, USER, "Maildir", ".Reports", "new");
    expect(existsSync(folder), `no ${folder}\n${dovecot.readLog().slice(-2000)}`).toBe(true);
    expect(readdirSync(folder)).toHaveLength(1);
  });

  it("refuses to upload a script with errors, naming the line", async () => {
    const file = scriptFile("broken.sieve", 'require "fileinto";\nfileinto "A"\nkeep;\n');
    const result = await cli(["sieve", "put", file]);
    expect(result.status).toBe(3);
    expect(result.err).toContain(`${file}:3:1: error:`);
    expect((await cli(["sieve", "list"])).out).not.toContain("broken");
  });

  it("shows response codes with their meaning and exits 4", async () => {
    const missing = await cli(["sieve", "delete", "no-such-script"]);
    expect(missing.status).toBe(4);
    expect(missing.err).toContain("NO (NONEXISTENT)");
    expect(missing.err).toContain("there is no script of that name");
    const active = await cli(["sieve", "delete", "reports"]);
    expect(active.status).toBe(4);
    expect(active.err).toContain("deactivate it first");
  });

  it("activate --none, rename and delete", async () => {
    expect((await cli(["sieve", "activate", "--none"])).status).toBe(0);
    expect((await cli(["sieve", "rename", "reports", "weekly"])).status).toBe(0);
    expect((await cli(["sieve", "list"])).out).toBe("weekly\n");
    expect((await cli(["sieve", "delete", "weekly"])).status).toBe(0);
    expect((await cli(["sieve", "list"])).out).toBe("");
  });

  it("check --server takes the extensions from the server's SIEVE capability", async () => {
    const file = scriptFile("edit.sieve", 'require "editheader";\naddheader "X-Seen-By" "emailng";\n');
    expect((await cli(["sieve", "check", file])).status).toBe(3);
    const server = await cli(["sieve", "check", "--server", file]);
    expect(server.status).toBe(0);
    expect(server.err).toContain("editheader");
  });

  it("a wrong password is a clear error (last: Dovecot then delays logins from this address)", async () => {
    const credentials = join(dir, "wrong");
    writeFileSync(credentials, `${USER}\nnot-the-password\n`);
    chmodSync(credentials, 0o600);
    const result = await cli(["sieve", "list", "--credentials", credentials]);
    expect(result.status).toBe(4);
    expect(result.err).toContain('AUTHENTICATE failed: NO "Authentication failed."');
  });
});

/** A server that greets like Dovecot and then does what `behave` says. */
async function fakeServer(
  behave: (socket: Socket, line: string) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.write('"IMPLEMENTATION" "fake"\r\n"SIEVE" "fileinto"\r\n"SASL" "PLAIN"\r\nOK "ready"\r\n');
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      let end = buffer.indexOf("\r\n");
      while (end >= 0) {
        behave(socket, buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\r\n");
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return { server, port: typeof address === "object" && address !== null ? address.port : 0 };
}

describe("ManageSieve client against misbehaving servers", () => {
  it.each([
    {
      name: "drops the connection mid-reply",
      behave: (socket: Socket) => {
        socket.write('"a" ACTIVE\r\n"b');
        socket.end();
      },
      failure: "closed",
      text: "the server closed the connection while waiting for LISTSCRIPTS",
    },
    {
      name: "sends garbage",
      behave: (socket: Socket) => socket.write("\u0001\u0002garbage }{\r\n"),
      failure: "protocol",
      text: "malformed response from the server",
    },
    {
      name: "says BYE",
      behave: (socket: Socket) => socket.end('BYE "going down"\r\n'),
      failure: "bye",
      text: 'BYE "going down"',
    },
    {
      name: "stays silent",
      behave: () => {},
      failure: "timeout",
      text: "no answer to LISTSCRIPTS within 500 ms",
    },
    {
      name: "truncates a literal",
      behave: (socket: Socket) => {
        socket.write("{100}\r\nonly a few bytes");
        socket.end();
      },
      failure: "closed",
      text: "closed the connection",
    },
  ])("$name", async ({ behave, failure, text }) => {
    const { server, port: fakePort } = await fakeServer((socket) => behave(socket));
    try {
      const client = await ManageSieveClient.connect({
        host: "127.0.0.1",
        port: fakePort,
        starttls: false,
        timeoutMs: 500,
      });
      const error = await client.listScripts().catch((caught: ManageSieveError) => caught);
      client.close();
      expect(error).toBeInstanceOf(ManageSieveError);
      expect((error as ManageSieveError).failure).toBe(failure);
      expect((error as ManageSieveError).message).toContain(text);
    } finally {
      server.close();
    }
  });

  it("refuses a server without STARTTLS when TLS is required", async () => {
    const { server, port: fakePort } = await fakeServer(() => {});
    try {
      const error = await ManageSieveClient.connect({
        host: "127.0.0.1",
        port: fakePort,
        starttls: "required",
        timeoutMs: 2000,
      }).catch((caught: ManageSieveError) => caught);
      expect((error as ManageSieveError).failure).toBe("unsupported");
    } finally {
      server.close();
    }
  });

  it("reports a refused connection", async () => {
    const { server, port: fakePort } = await fakeServer(() => {});
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await ManageSieveClient.connect({
      host: "127.0.0.1",
      port: fakePort,
      starttls: false,
      timeoutMs: 2000,
    }).catch((caught: ManageSieveError) => caught);
    expect((error as ManageSieveError).failure).toBe("connect");
  });
});
