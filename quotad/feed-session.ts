/**
 * The usage feed: a Dovecot dict proxy server session that takes the
 * transactions the quota_clone plugin writes (docs/protocols
 * dovecot-dict-proxy.md "Usage 2", vectors dict-09, dict-10):
 *
 *     H3<TAB>2<TAB>0<TAB><TAB>quotaclone        (Dovecot 2.4: H4…)
 *     B1<TAB>alice@example.test
 *     S1<TAB>priv/quota/storage<TAB>1205
 *     S1<TAB>priv/quota/messages<TAB>1
 *     C1                                         → O1
 *
 * Only a well-formed transaction changes usage, and all of it or nothing:
 * a user that cannot be a username, a key other than priv/quota/storage or
 * priv/quota/messages, a value that is not a decimal count, an atomic
 * increment (that is the quota *backend* dict, not quota_clone), a line the
 * codec could not parse while the transaction was open, too many changes or
 * transactions, an unknown transaction id, a refused hello or the wrong
 * dict name — each makes the commit answer F<id> and leaves the store as it
 * was. An unset (2.4's quota_clone_unset sends one before each set)
 * removes a value; a set after it in the same transaction wins.
 *
 * Lookups of the two keys are answered from the store (handy with
 * `doveadm dict get`); iteration is refused. Replies follow the peer's
 * protocol version (core/protocols/dovecot-dict.ts).
 */
import type { Logger } from "pino";
import { sanitizePeerString } from "../core/log/logger.js";
import type { SessionFactory } from "../core/net/protocol.js";
import type { DictCommand, DictHello, DictProtocolVersion } from "../core/protocols/dict-commands.js";
import type { DictClientFrame, DictServerReply } from "../core/protocols/dovecot-dict.js";
import { normaliseUsername, parseCount, type UsageStore, type UsageUpdate } from "./usage-store.js";

export const STORAGE_KEY = "priv/quota/storage";
export const MESSAGES_KEY = "priv/quota/messages";
/** quota_clone opens one transaction per connection; a few more are tolerated. */
export const MAX_OPEN_TRANSACTIONS = 8;
/** quota_clone sets two keys (plus two unsets on 2.4 with quota_clone_unset). */
export const MAX_CHANGES_PER_TRANSACTION = 16;

export type FeedOutcome = "applied" | "refused" | "failed";

export interface FeedSessionDependencies {
  store: UsageStore;
  /** The dict name expected in the hello (quota_clone_dict = proxy:<socket>:<name>); "" accepts any. */
  dictName: string;
  now?: () => number;
  /** Called for every commit: applied, refused (bad input) or failed (store down); seconds spent applying. */
  committed?: (outcome: FeedOutcome, seconds: number) => void;
}

interface Transaction {
  username: string | null;
  storage?: number | null;
  messages?: number | null;
  changes: number;
  /** Why the commit will be refused, once something was wrong. */
  broken?: string;
}

const FALLBACK_VERSION: DictProtocolVersion = { major: 3, minor: 0 };

export function quotaFeedSessions(
  dependencies: FeedSessionDependencies,
): SessionFactory<DictClientFrame, DictServerReply> {
  const now = dependencies.now ?? Date.now;
  return (_peer, log: Logger) => {
    let hello: DictHello | undefined;
    let refusal: string | undefined;
    const transactions = new Map<number, Transaction>();
    const warned = new Set<string>();
    const warnOnce = (kind: string, details: Record<string, unknown>, message: string) => {
      if (warned.has(kind)) return;
      warned.add(kind);
      log.warn(details, message);
    };
    const breakAll = (reason: string) => {
      for (const transaction of transactions.values()) transaction.broken ??= reason;
    };

    const commitReply = (
      version: DictProtocolVersion,
      id: number,
      result: Extract<DictServerReply, { kind: "commit" }>["result"],
    ): DictServerReply => ({ kind: "commit", version, id, result });

    function refuseCommit(version: DictProtocolVersion, id: number, reason: string): DictServerReply {
      dependencies.committed?.("refused", 0);
      warnOnce(`commit ${reason}`, { id, reason }, "quota_clone transaction refused; usage unchanged");
      return commitReply(version, id, { kind: "failed", error: reason });
    }

    async function commit(version: DictProtocolVersion, id: number): Promise<DictServerReply> {
      const transaction = transactions.get(id);
      transactions.delete(id);
      if (refusal !== undefined) return refuseCommit(version, id, refusal);
      if (transaction === undefined) return refuseCommit(version, id, `unknown transaction ${id}`);
      if (transaction.broken !== undefined) return refuseCommit(version, id, transaction.broken);
      if (transaction.username === null) return refuseCommit(version, id, "transaction without a valid user");
      if (transaction.changes === 0) return commitReply(version, id, { kind: "ok" });
      const update: UsageUpdate = { username: transaction.username };
      if (transaction.storage !== undefined) update.storageBytes = transaction.storage;
      if (transaction.messages !== undefined) update.messages = transaction.messages;
      const started = performance.now();
      try {
        await dependencies.store.write([update], now());
      } catch (error) {
        dependencies.committed?.("failed", (performance.now() - started) / 1000);
        warnOnce("store", { err: error }, "usage store write failed; answering a commit failure");
        return commitReply(version, id, { kind: "failed", error: "usage store unavailable" });
      }
      dependencies.committed?.("applied", (performance.now() - started) / 1000);
      if (log.isLevelEnabled("debug")) log.debug({ update }, "usage updated");
      return commitReply(version, id, { kind: "ok" });
    }

    async function lookup(version: DictProtocolVersion, key: string, user: string): Promise<DictServerReply> {
      const username = normaliseUsername(user);
      if (username === null || (key !== STORAGE_KEY && key !== MESSAGES_KEY)) {
        return { kind: "lookup", version, result: { kind: "not-found" } };
      }
      try {
        const record = (await dependencies.store.read([username])).get(username);
        const value = key === STORAGE_KEY ? record?.storageBytes : record?.messages;
        return {
          kind: "lookup",
          version,
          result:
            value === undefined || value === null
              ? { kind: "not-found" }
              : { kind: "found", values: [String(value)] },
        };
      } catch (error) {
        warnOnce("store", { err: error }, "usage store read failed; answering a lookup failure");
        return { kind: "lookup", version, result: { kind: "failed", error: "usage store unavailable" } };
      }
    }

    function change(command: Extract<DictCommand, { kind: "set" | "unset" }>): void {
      const transaction = transactions.get(command.id);
      // Changes to a transaction that was never begun are dropped; its commit is refused.
      if (transaction === undefined || transaction.broken !== undefined) return;
      transaction.changes += 1;
      if (transaction.changes > MAX_CHANGES_PER_TRANSACTION) {
        transaction.broken = `more than ${MAX_CHANGES_PER_TRANSACTION} changes in one transaction`;
        return;
      }
      const field =
        command.key === STORAGE_KEY ? "storage" : command.key === MESSAGES_KEY ? "messages" : undefined;
      if (field === undefined) {
        transaction.broken = `unexpected key ${sanitizePeerString(command.key, 60)}`;
        return;
      }
      if (command.kind === "unset") {
        transaction[field] = null;
        return;
      }
      const value = parseCount(command.value);
      if (value === null) {
        transaction.broken = `${command.key} is not a decimal count`;
        return;
      }
      transaction[field] = value;
    }

    function handleCommand(
      command: DictCommand,
      version: DictProtocolVersion,
    ): DictServerReply | undefined | Promise<DictServerReply> {
      switch (command.kind) {
        case "begin": {
          if (transactions.has(command.id)) {
            transactions.get(command.id)!.broken = `transaction ${command.id} begun twice`;
            return undefined;
          }
          const transaction: Transaction = { username: normaliseUsername(command.user), changes: 0 };
          if (transactions.size >= MAX_OPEN_TRANSACTIONS) {
            transaction.broken = `more than ${MAX_OPEN_TRANSACTIONS} open transactions`;
          }
          transactions.set(command.id, transaction);
          return undefined;
        }
        case "set":
        case "unset":
          change(command);
          return undefined;
        case "atomic-inc": {
          const transaction = transactions.get(command.id);
          if (transaction !== undefined) {
            transaction.broken ??= "atomic increments are not accepted: quota_clone writes absolute values";
          }
          return undefined;
        }
        case "timestamp":
          return undefined;
        case "rollback":
          transactions.delete(command.id);
          return undefined;
        case "commit":
          return commit(version, command.id);
        case "lookup":
          return lookup(version, command.key, command.user);
        case "iterate":
          return {
            kind: "iterate",
            version,
            rows: [],
            end: { ok: false, error: "iteration is not supported" },
          };
        default: {
          const unreachable: never = command;
          return unreachable;
        }
      }
    }

    return {
      handle(frame) {
        switch (frame.kind) {
          case "hello": {
            hello = frame.hello;
            if (dependencies.dictName !== "" && hello.dictName !== dependencies.dictName) {
              refusal = `unknown dict name ${sanitizePeerString(hello.dictName, 60)}`;
              warnOnce(
                "dict name",
                { dictName: sanitizePeerString(hello.dictName, 60) },
                "hello for another dict; refusing its commands",
              );
            }
            return undefined;
          }
          case "command":
            return handleCommand(frame.command, frame.version);
          case "invalid": {
            const version = frame.version ?? hello?.version ?? FALLBACK_VERSION;
            const reason = sanitizePeerString(frame.reason, 120);
            if (hello === undefined) refusal ??= `no valid hello: ${reason}`;
            warnOnce(
              `invalid ${frame.letter}`,
              { letter: sanitizePeerString(frame.letter, 4), reason },
              "malformed dict line",
            );
            // Whatever the line was meant to change is lost, so nothing open may commit.
            breakAll(`malformed line in the transaction: ${reason}`);
            switch (frame.letter) {
              case "L":
                return { kind: "lookup", version, result: { kind: "failed", error: "malformed lookup" } };
              case "I":
                return { kind: "iterate", version, rows: [], end: { ok: false, error: "malformed iterate" } };
              case "C":
              case "D":
                // The id could not be read; the client matches replies by order and ignores it.
                dependencies.committed?.("refused", 0);
                return commitReply(version, 0, { kind: "failed", error: "malformed commit" });
              default:
                return undefined;
            }
          }
          default: {
            const unreachable: never = frame;
            return unreachable;
          }
        }
      },
    };
  };
}
