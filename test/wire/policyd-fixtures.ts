/**
 * Shared pieces of policyd's tests: configurations written as the TOML an
 * administrator would write, a small department directory (staff, faculty,
 * students and csall, whose posting the directory restricts to staff and
 * faculty), policy requests with every attribute Postfix 3.7 sends, a fake
 * clock, and a store wrapper that can be told to fail like Redis down.
 */
import pino from "pino";
import { parseConfigText } from "../../core/config/load.js";
import type { Directory } from "../../core/directory/model.js";
import { Resolver } from "../../core/directory/resolver.js";
import { TransientError } from "../../core/errors.js";
import { PolicyRequest } from "../../core/protocols/policy.js";
import type { DecisionDependencies } from "../../policyd/decide.js";
import { MemoryStore } from "../../policyd/memory-store.js";
import { compilePolicy, type PolicySettings } from "../../policyd/rules.js";
import type { PolicyStore } from "../../policyd/store.js";
import { TransactionTable } from "../../policyd/transactions.js";
import { testGroup, testUser } from "../harness/directory-builders.js";

export const silentLog = pino({ level: "silent" });

export function configFrom(toml: string) {
  const result = parseConfigText(toml);
  if (!result.ok) throw new Error(`invalid test configuration: ${JSON.stringify(result.errors)}`);
  return result.config;
}

export function settingsFrom(toml: string): PolicySettings {
  const compiled = compilePolicy(configFrom(toml));
  if (!compiled.ok) throw new Error(`invalid test rules: ${JSON.stringify(compiled.errors)}`);
  return compiled.settings;
}

/** staff: jsmith; faculty: gpapadop; students: csd4713, csd4714; csall = all three groups, posting staff+faculty. */
export function departmentDirectory(): Directory {
  return {
    domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: [] },
    users: [
      testUser("jsmith", { category: "staff" }),
      testUser("gpapadop", {
        category: "faculty",
        alternateAddresses: ["george.papadopoulos@cs.example.org"],
      }),
      testUser("csd4713", { category: "student" }),
      testUser("csd4714", { category: "student" }),
      testUser("mnikolai", { category: "pg" }),
    ],
    groups: [
      testGroup("csstaff", { memberLogins: ["jsmith"] }),
      testGroup("csfaculty", { memberLogins: ["gpapadop"] }),
      testGroup("students", { memberLogins: ["csd4713", "csd4714"] }),
      testGroup("cspg", { memberLogins: ["mnikolai"] }),
      testGroup("csall", {
        addresses: ["csall@cs.example.org", "everyone@cs.example.org"],
        memberGroups: ["csstaff", "csfaculty", "students", "cspg"],
        posting: { logins: [], groups: ["csstaff", "csfaculty"] },
      }),
      testGroup("research", { memberGroups: ["csfaculty", "cspg"] }),
    ],
  };
}

/** Every attribute Postfix 3.7 sends, empty or 0 when unknown, with overrides. */
export function policyAttributes(overrides: Record<string, string>): Record<string, string> {
  return {
    request: "smtpd_access_policy",
    protocol_state: "RCPT",
    protocol_name: "ESMTP",
    client_address: "198.51.100.7",
    client_name: "mail.remote.example",
    client_port: "41234",
    reverse_client_name: "mail.remote.example",
    server_address: "127.0.0.1",
    server_port: "25",
    helo_name: "mail.remote.example",
    sender: "someone@remote.example",
    recipient: "",
    recipient_count: "0",
    queue_id: "",
    instance: "1a2b.65f0c0de.3c4d.0",
    size: "0",
    etrn_domain: "",
    stress: "",
    sasl_method: "",
    sasl_username: "",
    sasl_sender: "",
    ccert_subject: "",
    ccert_issuer: "",
    ccert_fingerprint: "",
    ccert_pubkey_fingerprint: "",
    encryption_protocol: "",
    encryption_cipher: "",
    encryption_keysize: "0",
    policy_context: "",
    ...overrides,
  };
}

export function policyRequest(overrides: Record<string, string>): PolicyRequest {
  return new PolicyRequest(Object.entries(policyAttributes(overrides)));
}

export interface FakeClock {
  now: () => number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function fakeClock(start = Date.UTC(2026, 0, 5, 9, 0, 0)): FakeClock {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
    set: (ms) => {
      time = ms;
    },
  };
}

/** A store whose every method fails with a TransientError while `down` is true, like Redis stopped. */
export class FailingStore implements PolicyStore {
  readonly kind = "memory" as const;
  down = false;

  constructor(private readonly inner: PolicyStore) {}

  private guard(): void {
    if (this.down) throw new TransientError("transient.backend_down", "store down (test)");
  }

  async readCounters(...args: Parameters<PolicyStore["readCounters"]>) {
    this.guard();
    return this.inner.readCounters(...args);
  }
  async chargeCounters(...args: Parameters<PolicyStore["chargeCounters"]>) {
    this.guard();
    return this.inner.chargeCounters(...args);
  }
  async greylist(...args: Parameters<PolicyStore["greylist"]>) {
    this.guard();
    return this.inner.greylist(...args);
  }
  async recordBurst(...args: Parameters<PolicyStore["recordBurst"]>) {
    this.guard();
    return this.inner.recordBurst(...args);
  }
  async hold(login: string) {
    this.guard();
    return this.inner.hold(login);
  }
  async release(login: string) {
    this.guard();
    return this.inner.release(login);
  }
  async report(...args: Parameters<PolicyStore["report"]>) {
    this.guard();
    return this.inner.report(...args);
  }
  async reset(...args: Parameters<PolicyStore["reset"]>) {
    this.guard();
    return this.inner.reset(...args);
  }
  close() {
    return this.inner.close();
  }
}

/** Decision dependencies over an in-memory store, the department directory and a fake clock. */
export function decisionDependencies(
  settings: PolicySettings,
  options: { clock?: FakeClock; store?: PolicyStore; directory?: Directory | null } = {},
): DecisionDependencies & { clock: FakeClock } {
  const clock = options.clock ?? fakeClock();
  const directory = options.directory === undefined ? departmentDirectory() : options.directory;
  return {
    settings,
    store:
      options.store ??
      new MemoryStore({
        path: null,
        flushIntervalMs: 1000,
        maxEntries: 100_000,
        log: silentLog,
        now: clock.now,
      }),
    resolver: directory === null ? null : new Resolver(directory),
    transactions: new TransactionTable(settings.transactionTimeoutMs, 10_000),
    now: clock.now,
    hostName: "relay.test",
    clock,
  };
}
