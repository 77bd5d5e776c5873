/**
 * The policy half of `emailng demo`: policyd and quotad started on the demo's
 * snapshot (sample directory) with small, visible settings, then asked the
 * questions Postfix would ask at RCPT and END-OF-MESSAGE, over their real
 * sockets. quotad's usage arrives the way Dovecot's quota_clone sends it (a
 * dict transaction on its feed socket), so every answer shown went through
 * the same code a production relay runs.
 */
import { join } from "node:path";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { createLogger } from "../core/log/logger.js";
import { exchangeOnce } from "../core/net/one-shot.js";
import { encodeDictCommand, encodeDictHello } from "../core/protocols/dict-commands.js";
import { DictReplyDecoder, type DictReplyLine } from "../core/protocols/dict-replies.js";
import { encodePolicyRequest } from "../core/protocols/policy.js";
import { PolicyReplyDecoder } from "../core/protocols/policy-reply.js";
import { utf8Encode } from "../core/protocols/text.js";
import { startPolicyd } from "../policyd/program.js";
import { startQuotad } from "../quotad/program.js";
import type { CliIo } from "./io.js";

/** The demo's [policyd] and [quotad] tables (appended to its configuration). */
export function demoDaemonsConfig(workDir: string): string {
  return `
[policyd]
admin_socket = "${join(workDir, "policyd-admin.sock")}"
[[policyd.listen]]
unix = "${join(workDir, "policyd.sock")}"
[policyd.store]
path = ""
[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
metric = "messages"
[[policyd.rules.windows]]
period = "1m"
limit = 3
[policyd.protected_lists]
from_directory = true
[quotad]
[[quotad.listen]]
unix = "${join(workDir, "quotad.sock")}"
[quotad.usage]
path = "${join(workDir, "quota-usage.sqlite")}"
[[quotad.feed.listen]]
unix = "${join(workDir, "quotad-dict.sock")}"
`;
}

const TIMEOUT_MS = 5_000;

/** One request as smtpd sends it (the attributes that matter here). */
function policyRequest(stage: "RCPT" | "END-OF-MESSAGE", fields: Record<string, string>): Uint8Array {
  return encodePolicyRequest({
    request: "smtpd_access_policy",
    protocol_state: stage,
    protocol_name: "ESMTP",
    client_address: "198.51.100.7",
    client_name: "unknown",
    helo_name: "laptop",
    sender: "",
    recipient: "",
    recipient_count: stage === "RCPT" ? "0" : "1",
    size: "2000",
    sasl_username: "",
    ...fields,
  });
}

async function ask(socket: string, request: Uint8Array): Promise<string> {
  const result = await exchangeOnce({ path: socket }, request, new PolicyReplyDecoder(), TIMEOUT_MS);
  return result.ok ? `action=${result.reply.action ?? "(none)"}` : `no answer (${result.message})`;
}

/** Stores `bytes` of usage for `user` as Dovecot's quota_clone does. */
async function feedUsage(socket: string, user: string, bytes: number, messages: number): Promise<string> {
  const lines = [
    encodeDictHello({ version: { major: 3, minor: 2 }, valueType: 0, user: "", dictName: "quotaclone" }),
    encodeDictCommand({ kind: "begin", id: 1, user }),
    encodeDictCommand({ kind: "set", id: 1, key: "priv/quota/storage", value: String(bytes) }),
    encodeDictCommand({ kind: "set", id: 1, key: "priv/quota/messages", value: String(messages) }),
    encodeDictCommand({ kind: "commit", id: 1, async: false }),
  ];
  const request = utf8Encode(lines.join(""));
  const result = await exchangeOnce({ path: socket }, request, new DictReplyDecoder(), TIMEOUT_MS);
  return result.ok ? describeDictReply(result.reply) : `no answer (${result.message})`;
}

/** A dict reply line as it went over the wire: letter and value. */
export function describeDictReply(line: DictReplyLine): string {
  switch (line.kind) {
    case "reply":
      return `${line.code === "end" ? "(end)" : line.code}${[line.value, ...line.extra].join(" ")}`;
    case "async-id":
      return `*${line.id}`;
    case "unknown":
      return line.line;
    default: {
      const unreachable: never = line;
      return unreachable;
    }
  }
}

export async function showPolicyDaemons(
  config: DeepReadonly<Config>,
  workDir: string,
  io: CliIo,
): Promise<void> {
  const log = createLogger({ program: "demo", level: "fatal" });
  const quotad = await startQuotad(config, log, { processMetrics: false });
  try {
    const policyd = await startPolicyd(config, log, { processMetrics: false });
    try {
      const quotaSocket = join(workDir, "quotad.sock");
      const feed = join(workDir, "quotad-dict.sock");
      io.out(`\nquotad on ${quotaSocket} (usage fed like Dovecot's quota_clone on ${feed}):\n`);
      io.out(
        `  quota_clone: csd4714 uses 1,100,000 of 1,048,576 bytes → commit ${await feedUsage(feed, "csd4714", 1_100_000, 12)}\n`,
      );
      io.out(
        `  quota_clone: gpapadop uses 10,000,000 bytes           → commit ${await feedUsage(feed, "gpapadop", 10_000_000, 40)}\n`,
      );
      for (const recipient of [
        "csd4714@cs.example.org",
        "makri.eirini@cs.example.org",
        "gpapadop@cs.example.org",
      ]) {
        const reply = await ask(
          quotaSocket,
          policyRequest("RCPT", { recipient, size: "20000", instance: `q-${recipient}` }),
        );
        io.out(`  RCPT TO:<${recipient}> SIZE=20000  →  ${reply}\n`);
      }

      const policySocket = join(workDir, "policyd.sock");
      io.out(`\npolicyd on ${policySocket}:\n`);
      const list = "csall@cs.example.org";
      for (const [login, who] of [
        ["csd4711", "a student"],
        ["jsmith", "staff"],
      ] as const) {
        const reply = await ask(
          policySocket,
          policyRequest("RCPT", {
            recipient: list,
            sasl_username: login,
            sender: `${login}@cs.example.org`,
            instance: `l-${login}`,
          }),
        );
        io.out(`  ${who} (${login}) → ${list}  →  ${reply}\n`);
      }
      io.out("  rate limit login-messages: 3 messages a minute per SASL login\n");
      for (let message = 1; message <= 4; message++) {
        const fields = {
          recipient: "mnikolai@cs.example.org",
          sasl_username: "dvlachos",
          sender: "dvlachos@cs.example.org",
          instance: `r-${message}`,
        };
        const rcpt = await ask(policySocket, policyRequest("RCPT", fields));
        const end =
          rcpt === "action=DUNNO" ? await ask(policySocket, policyRequest("END-OF-MESSAGE", fields)) : "";
        io.out(
          `  message ${message} from dvlachos: RCPT ${rcpt}${end === "" ? "" : `, END-OF-MESSAGE ${end}`}\n`,
        );
      }
    } finally {
      await policyd.close();
    }
  } finally {
    await quotad.close();
  }
}
