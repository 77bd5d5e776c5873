/**
 * Wire tests: the real policyd (startPolicyd) on temporary UNIX sockets,
 * driven with the bytes Postfix 3.7 sends (the captured transcripts in
 * test/vectors) and with hand-made hostile input: every stage of a real
 * session on one connection with a limit reached in the second transaction,
 * SASL attributes, several requests per connection, an idle connection kept
 * open, unknown and missing attributes, an oversized line and garbage
 * (connection closed, daemon still serving), a store that fails or hangs
 * (failure action within the budget), reload (invalid rules refused, valid
 * ones swapped with counters kept), the admin socket, and counters
 * surviving a restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { encodePolicyRequest } from "../../core/protocols/policy.js";
import { askPolicyd } from "../../policyd/admin-commands.js";
import { MemoryStore } from "../../policyd/memory-store.js";
import { type Policyd, policydProgram, startPolicyd } from "../../policyd/program.js";
import type { PolicyStore } from "../../policyd/store.js";
import { loadVectorFile } from "../harness/vectors.js";
import { connectLineClient, type LineClient } from "./net-fixtures.js";
import { configFrom, FailingStore, policyAttributes, silentLog } from "./policyd-fixtures.js";

const root = mkdtempSync(join(tmpdir(), "emailng-policyd-wire-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
const running: Policyd[] = [];
const clients: LineClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.destroy();
  for (const policyd of running.splice(0)) await policyd.close();
});

function configText(dir: string, rules: string, extra = ""): string {
  return `
[log]
level = "error"
[snapshot]
path = "${join(dir, "snapshot.sqlite")}"
[policyd]
request_timeout = "1s"
admin_socket = "${join(dir, "admin.sock")}"
${extra}
[[policyd.listen]]
unix = "${join(dir, "policyd.sock")}"
[policyd.store]
path = "${join(dir, "store.sqlite")}"
flush_interval = "50ms"
# No snapshot here: directory-protected lists would make every RCPT temporary.
[policyd.protected_lists]
from_directory = false
${rules}
`;
}

const CLIENT_RECIPIENTS = `
[[policyd.rules]]
name = "client-recipients"
key = "client_address"
metric = "recipients"
[[policyd.rules.windows]]
period = "1m"
limit = 2
`;

const LOGIN_MESSAGES = `
[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
[[policyd.rules.windows]]
period = "1h"
limit = 1
`;

async function start(rules: string, options: { extra?: string; store?: PolicyStore; dir?: string } = {}) {
  const dir = options.dir ?? mkdtempSync(join(root, `d${++counter}-`));
  const config = configFrom(configText(dir, rules, options.extra));
  const policyd = await startPolicyd(config, silentLog, { processMetrics: false, store: options.store });
  running.push(policyd);
  return { policyd, dir, socket: join(dir, "policyd.sock"), admin: join(dir, "admin.sock") };
}

async function connect(path: string): Promise<LineClient> {
  const client = await connectLineClient({ path });
  clients.push(client);
  return client;
}

async function reply(client: LineClient, timeoutMs = 5000): Promise<string> {
  const action = await client.nextLine(timeoutMs);
  expect(await client.nextLine(timeoutMs)).toBe("");
  return action;
}

function request(overrides: Record<string, string>): string {
  return Buffer.from(encodePolicyRequest(policyAttributes(overrides))).toString("utf8");
}

describe("policyd over the wire", () => {
  it("serves a whole captured Postfix session on one connection, refusing the recipient past the limit", async () => {
    const { socket } = await start(CLIENT_RECIPIENTS);
    const vector = loadVectorFile("policy-01-all-protocol-states.txt");
    const connection = vector.connections[0]!;
    const client = await connect(socket);
    const requests = Buffer.from(connection.clientBytes)
      .toString("latin1")
      .split("\n\n")
      .filter((text) => text.length > 0);
    const replies: string[] = [];
    for (const record of connection.clientRecords) {
      client.socket.write(record);
    }
    for (let i = 0; i < requests.length; i++) replies.push(await reply(client));
    const states = requests.map((text) => /protocol_state=([A-Z-]+)/.exec(text)?.[1]);
    const refused = replies
      .map((action, i) => [states[i], action])
      .filter(([, action]) => action !== "action=DUNNO");
    // Transaction 1: rcpt1 and rcpt2 fit the limit of 2 and are charged at END-OF-MESSAGE;
    // transaction 2: rcpt3 would be the third recipient of this client within the minute.
    expect(refused).toEqual([
      ["RCPT", "action=450 4.7.1 Rate limit exceeded (client-recipients), please try again later"],
    ]);
    expect(replies.length).toBe(connection.serverRecords.filter((bytes) => bytes.length > 1).length);
  });

  it("reads the SASL attributes of a captured TLS+AUTH session and limits by login", async () => {
    const { socket } = await start(LOGIN_MESSAGES);
    const vector = loadVectorFile("policy-15-tls-and-sasl-attributes.txt");
    const client = await connect(socket);
    client.socket.write(vector.connections[0]!.clientBytes);
    expect(await reply(client)).toBe("action=DUNNO"); // MAIL: a stage policyd does not use
    expect(await reply(client)).toBe("action=DUNNO"); // RCPT: alice has sent nothing yet
    const base = { sasl_username: "alice@example.test", sasl_method: "PLAIN", recipient: "bob@example.test" };
    client.send(
      request({
        ...base,
        instance: "w.1",
        protocol_state: "END-OF-MESSAGE",
        recipient_count: "1",
        size: "900",
      }),
    );
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(request({ ...base, instance: "w.2" }));
    expect(await reply(client)).toBe(
      "action=450 4.7.1 Rate limit exceeded (login-messages), please try again later",
    );
    client.send(request({ ...base, sasl_username: "carol@example.test", instance: "w.3" }));
    expect(await reply(client)).toBe("action=DUNNO");
  });

  it("ignores unknown attributes, answers a request missing most attributes, and keeps an idle connection", async () => {
    const { socket } = await start(LOGIN_MESSAGES);
    const client = await connect(socket);
    client.send(
      request({
        instance: "u.1",
        recipient: "x@example.test",
        compatibility_level: "3.8",
        mail_version: "3.9.0",
        x_new: "y",
      }),
    );
    expect(await reply(client)).toBe("action=DUNNO");
    client.send("request=smtpd_access_policy\nprotocol_state=RCPT\n\n");
    expect(await reply(client)).toBe("action=DUNNO");
    client.send("protocol_state=END-OF-MESSAGE\nsasl_username=zed\nrecipient_count=banana\nsize=-4\n\n");
    expect(await reply(client)).toBe("action=DUNNO");
    await new Promise((resolve) => setTimeout(resolve, 300));
    client.send(request({ instance: "u.2", recipient: "y@example.test" }));
    expect(await reply(client)).toBe("action=DUNNO");
  });

  it.each([
    { name: "an oversized line", bytes: `request=smtpd_access_policy\nrecipient=${"x".repeat(5000)}\n\n` },
    { name: "a line without =", bytes: "this is not a policy request\n\n" },
    { name: "binary garbage", bytes: "\u0000\u0001\u0002\u00ff\u001b[31m\n\n" },
  ])("closes the connection on $name and keeps serving others", async ({ bytes }) => {
    const { socket } = await start(LOGIN_MESSAGES);
    const bad = await connect(socket);
    bad.send(bytes);
    await bad.closed(5000);
    const good = await connect(socket);
    good.send(request({ instance: "g.1", recipient: "x@example.test" }));
    expect(await reply(good)).toBe("action=DUNNO");
  });

  it.each([
    { failure: "DEFER_IF_PERMIT", want: "action=DEFER_IF_PERMIT Service temporarily unavailable" },
    { failure: "DUNNO", want: "action=DUNNO" },
  ])("answers the failure action $failure when the store is down", async ({ failure, want }) => {
    const store = new FailingStore(
      new MemoryStore({ path: null, flushIntervalMs: 1000, maxEntries: 1000, log: silentLog }),
    );
    const { socket } = await start(LOGIN_MESSAGES, { store, extra: `failure_action = "${failure}"` });
    const client = await connect(socket);
    store.down = true;
    client.send(request({ instance: "s.1", sasl_username: "alice", recipient: "x@example.test" }));
    expect(await reply(client)).toBe(want);
    store.down = false;
    client.send(request({ instance: "s.2", sasl_username: "alice", recipient: "x@example.test" }));
    expect(await reply(client)).toBe("action=DUNNO");
  });

  it("answers DEFER_IF_PERMIT within the request budget when the store hangs", async () => {
    const inner = new MemoryStore({ path: null, flushIntervalMs: 1000, maxEntries: 1000, log: silentLog });
    const hanging: PolicyStore = Object.assign(Object.create(inner) as PolicyStore, {
      readCounters: () => new Promise<never>(() => {}),
    });
    const { socket } = await start(LOGIN_MESSAGES, { store: hanging, extra: 'failure_action = "DUNNO"' });
    const client = await connect(socket);
    const started = Date.now();
    client.send(request({ instance: "h.1", sasl_username: "alice", recipient: "x@example.test" }));
    expect(await reply(client)).toBe("action=DEFER_IF_PERMIT Service temporarily unavailable");
    expect(Date.now() - started).toBeLessThan(3000);
    await inner.close();
  });

  it("reload refuses invalid rules, swaps valid ones and keeps the counters", async () => {
    const { policyd, socket, dir } = await start(LOGIN_MESSAGES);
    const client = await connect(socket);
    const base = { sasl_username: "alice", recipient: "x@example.test" };
    client.send(request({ ...base, instance: "r.1" }));
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(
      request({ ...base, instance: "r.1", protocol_state: "END-OF-MESSAGE", recipient_count: "1" }),
    );
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(request({ ...base, instance: "r.2" }));
    expect(await reply(client)).toMatch(/^action=450 /);

    const invalid = configFrom(
      configText(
        dir,
        LOGIN_MESSAGES.replace(
          'name = "login-messages"',
          'name = "login-messages"\nexcept_classes = ["ghost"]',
        ),
      ),
    );
    await expect(policyd.reload(invalid)).rejects.toThrow(/class ghost is not defined/);
    expect(policyd.settings().rules[0]?.exceptClasses.size).toBe(0);

    await policyd.reload(configFrom(configText(dir, LOGIN_MESSAGES.replace("limit = 1", "limit = 2"))));
    client.send(request({ ...base, instance: "r.3" }));
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(
      request({ ...base, instance: "r.3", protocol_state: "END-OF-MESSAGE", recipient_count: "1" }),
    );
    expect(await reply(client)).toBe("action=DUNNO");
    // The counter survived the reload: 2 of 2 used now.
    client.send(request({ ...base, instance: "r.4" }));
    expect(await reply(client)).toMatch(/^action=450 /);
  });

  it("explains, resets and releases through the admin socket and the emailng command", async () => {
    const rules = `${LOGIN_MESSAGES}
[policyd.burst]
enabled = true
min_recipients = 3
min_distinct_recipients = 100
`;
    const { socket, admin, dir } = await start(rules);
    const client = await connect(socket);
    const base = { sasl_username: "alice", recipient: "", instance: "a.1" };
    for (const recipient of ["a@x.test", "b@x.test", "c@x.test", "d@x.test"]) {
      client.send(request({ ...base, recipient }));
      expect(await reply(client)).toBe("action=DUNNO");
    }
    client.send(request({ ...base, protocol_state: "END-OF-MESSAGE", recipient_count: "4" }));
    expect(await reply(client)).toBe("action=HOLD held: unusual sending volume for this account");

    const explained = await askPolicyd(admin, "explain", "alice");
    expect(explained).toMatchObject({
      ok: true,
      counters: [{ rule: "login-messages", value: "alice", limit: 1, used: 1, full: true }],
      hold: { login: "alice", reason: "4 recipients this interval, above 3" },
    });

    const configPath = join(dir, "emailng.toml");
    writeFileSync(configPath, configText(dir, rules));
    const run = async (args: string[]) => {
      let out = "";
      let err = "";
      let code = 0;
      try {
        await buildCli({
          io: {
            out: (text) => {
              out += text;
            },
            err: (text) => {
              err += text;
            },
          },
        }).parseAsync(["node", "emailng", ...args, "--config", configPath]);
      } catch (error) {
        code = (error as { exitCode?: number }).exitCode ?? 99;
      }
      return { out, err, code };
    };
    expect(await run(["policy", "explain", "alice"])).toMatchObject({
      code: 0,
      out: expect.stringMatching(
        /login-messages \[sasl_login=alice\] 1h: 1\/1 {2}FULL\nHELD since .*: 4 recipients/,
      ),
    });
    expect(await run(["policy", "release", "alice"])).toMatchObject({ code: 0, out: "alice released\n" });
    expect(await run(["policy", "release", "alice"])).toMatchObject({ code: 4, out: "alice was not held\n" });
    expect(await run(["policy", "reset", "alice"])).toMatchObject({ code: 0, out: "2 records removed\n" });
    expect(await run(["policy", "explain", "not a key"])).toMatchObject({ code: 3 });
    expect(await run(["policy", "explain"])).toMatchObject({ code: 1 });
    client.send(request({ ...base, instance: "a.2", recipient: "e@x.test" }));
    expect(await reply(client)).toBe("action=DUNNO");
  });

  it("counts every check per rule and outcome in the metrics", async () => {
    const { policyd, socket } = await start(`${LOGIN_MESSAGES}\n[policyd.metrics]\nlisten = "127.0.0.1:0"\n`);
    const client = await connect(socket);
    const base = { sasl_username: "alice", recipient: "x@example.test" };
    client.send(request({ ...base, instance: "m.1" }));
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(
      request({ ...base, instance: "m.1", protocol_state: "END-OF-MESSAGE", recipient_count: "1" }),
    );
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(request({ ...base, instance: "m.2" }));
    expect(await reply(client)).toMatch(/^action=450 /);
    const address = policyd.metricsAddress;
    if (address === null) throw new Error("no metrics endpoint");
    const text = await (await fetch(`http://${address.host}:${address.port}/metrics`)).text();
    const series = (labels: string) =>
      new RegExp(`emailng_policyd_checks_total\\{${labels},program="policyd"\\} (\\d+)`).exec(text)?.[1];
    expect(series('check="rate_limit",name="login-messages",result="pass",mode="enforce"')).toBe("1");
    expect(series('check="rate_limit",name="login-messages",result="defer",mode="enforce"')).toBe("1");
    expect(series('check="charge",name="login-messages",result="charged",mode="enforce"')).toBe("1");
    expect(text).toMatch(/emailng_policyd_outcomes_total\{outcome="rate_limited",program="policyd"\} 1/);
  });

  it("keeps counters across a restart (write-behind to SQLite)", async () => {
    const dir = mkdtempSync(join(root, "restart-"));
    const first = await start(LOGIN_MESSAGES, { dir });
    let client = await connect(first.socket);
    const base = { sasl_username: "alice", recipient: "x@example.test" };
    client.send(request({ ...base, instance: "p.1" }));
    expect(await reply(client)).toBe("action=DUNNO");
    client.send(
      request({ ...base, instance: "p.1", protocol_state: "END-OF-MESSAGE", recipient_count: "1" }),
    );
    expect(await reply(client)).toBe("action=DUNNO");
    client.socket.destroy();
    await first.policyd.close();
    running.splice(running.indexOf(first.policyd), 1);

    const second = await start(LOGIN_MESSAGES, { dir });
    client = await connect(second.socket);
    client.send(request({ ...base, instance: "p.2" }));
    expect(await reply(client)).toMatch(/^action=450 /);
  });
});

describe("emailng policyd", () => {
  it("runs from the command line, reloads its rules on SIGHUP (refusing an invalid file) and stops on SIGTERM", async () => {
    const dir = mkdtempSync(join(root, "cli-"));
    const configPath = join(dir, "emailng.toml");
    writeFileSync(configPath, configText(dir, LOGIN_MESSAGES));
    const output: string[] = [];
    const cli = buildCli({
      programs: [policydProgram],
      io: { out: (text) => output.push(text), err: (text) => output.push(text) },
    });
    const running = cli.parseAsync(["node", "emailng", "policyd", "--config", configPath]);
    let failed: unknown;
    running.catch((error: unknown) => {
      failed = error;
    });
    // The admin socket opens last: once it answers, the signal handlers are installed.
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (failed !== undefined || Date.now() > deadline) {
        throw new Error(
          `policyd did not start: ${String(failed ?? "no admin socket after 20 s")}\n${output.join("")}`,
        );
      }
      const answer = await askPolicyd(join(dir, "admin.sock"), "explain", "alice").catch(() => undefined);
      if (answer?.ok) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const client = await connect(join(dir, "policyd.sock"));
    const base = { sasl_username: "alice", recipient: "x@example.test" };
    const charge = async (instance: string) => {
      client.send(request({ ...base, instance }));
      expect(await reply(client)).toBe("action=DUNNO");
      client.send(request({ ...base, instance, protocol_state: "END-OF-MESSAGE", recipient_count: "1" }));
      expect(await reply(client)).toBe("action=DUNNO");
    };
    const check = async () => {
      client.send(request({ ...base, instance: "probe" }));
      return reply(client);
    };
    await charge("c.1");
    expect(await check()).toMatch(/^action=450 /);

    writeFileSync(configPath, configText(dir, LOGIN_MESSAGES.replace("limit = 1", "limit = 2")));
    const reloadDeadline = Date.now() + 20_000;
    let answer = "";
    while (answer !== "action=DUNNO") {
      if (Date.now() > reloadDeadline) throw new Error(`still answering "${answer}" 20 s after SIGHUP`);
      process.kill(process.pid, "SIGHUP");
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await check();
    }
    await charge("c.2");
    expect(await check()).toMatch(/^action=450 /);

    // An invalid file (a class nobody defined) is refused: the limit of 2 stays, not 5.
    writeFileSync(
      configPath,
      configText(dir, LOGIN_MESSAGES.replace("limit = 1", "limit = 5\nclass_limits = { ghost = 9 }")),
    );
    process.kill(process.pid, "SIGHUP");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await check()).toMatch(/^action=450 /);

    process.kill(process.pid, "SIGTERM");
    await running;
    await expect(
      connectLineClient({ path: join(dir, "policyd.sock") }).then((c) => c.nextLine(1000)),
    ).rejects.toThrow();
  });
});
