/**
 * Request pools: the sequences of requests the generators send, drawn
 * before the run from realistic mixes with Zipf-skewed popularity (a few
 * recipients, senders and client networks get most of the traffic, the
 * long tail still reaches every index). Pure functions of their inputs and a
 * seed, so every target in a sitting gets exactly the same requests.
 *
 * The mixes say what a relay sees, roughly: most RCPT addresses exist, a
 * share are typos, dictionary attacks or mail for other domains, some use
 * a +extension or the lastname.firstname form, some are lists.
 */

import { seededRandom, shuffle, weightedPicker, ZipfSampler } from "../lib/random.js";
import type { DictItem } from "../load/dict-client.js";
import type { PolicyItem } from "../load/policy-client.js";
import type { SocketmapItem } from "../load/socketmap-client.js";
import type { DirectoryKeys } from "./directory.js";

export const ZIPF_EXPONENT = 1.0;

/** Draws from a list with Zipf popularity over a shuffled order (popular items are spread over the list). */
export function zipfDrawer<T>(items: readonly T[], random: () => number, exponent = ZIPF_EXPONENT): () => T {
  if (items.length === 0) throw new RangeError("zipfDrawer: no items");
  const order = shuffle(
    Array.from({ length: items.length }, (_, index) => index),
    random,
  );
  const sampler = new ZipfSampler(items.length, exponent, random);
  return () => items[order[sampler.next()]!]!;
}

export interface RecipientMix {
  primary: number;
  alternate: number;
  extension: number;
  group: number;
  inactive: number;
  unknownLocal: number;
  otherDomain: number;
}

export const RELAY_RECIPIENT_MIX: RecipientMix = {
  primary: 0.5,
  alternate: 0.15,
  extension: 0.05,
  group: 0.05,
  inactive: 0.02,
  unknownLocal: 0.18,
  otherDomain: 0.05,
};

export type AddressKind = keyof RecipientMix;

/** Recipient addresses as a relay's RCPT TO sees them, with the kind of each. */
export function recipientAddresses(
  keys: DirectoryKeys,
  count: number,
  seed: number,
  mix: RecipientMix = RELAY_RECIPIENT_MIX,
): Array<{ address: string; kind: AddressKind }> {
  const random = seededRandom(seed);
  const primary = zipfDrawer(keys.primaries, random);
  const alternate = keys.alternates.length > 0 ? zipfDrawer(keys.alternates, random) : primary;
  const group = keys.groups.length > 0 ? zipfDrawer(keys.groups, random) : primary;
  const inactive = keys.inactive.length > 0 ? zipfDrawer(keys.inactive, random) : primary;
  const kinds = (Object.keys(mix) as AddressKind[]).map((kind) => ({ weight: mix[kind], value: kind }));
  const pickKind = weightedPicker(kinds, random);
  const out: Array<{ address: string; kind: AddressKind }> = [];
  for (let index = 0; index < count; index++) {
    const kind = pickKind();
    let address: string;
    switch (kind) {
      case "primary":
        address = primary();
        break;
      case "alternate":
        address = alternate();
        break;
      case "extension": {
        const [local, domain] = primary().split("@") as [string, string];
        address = `${local}+${["lists", "shop", "git", "bank"][index % 4]}@${domain}`;
        break;
      }
      case "group":
        address = group();
        break;
      case "inactive":
        address = inactive();
        break;
      case "unknownLocal":
        // Mostly a small set of guessed names (dictionary attacks repeat), some one-off typos.
        address =
          random() < 0.7
            ? `${["info", "admin", "sales", "webmaster", "test", "office", "hr", "support"][Math.floor(random() * 8)]}${Math.floor(random() * 50)}@cs.example.org`
            : `nobody${Math.floor(random() * 1_000_000)}@cs.example.org`;
        break;
      case "otherDomain":
        address = `user${Math.floor(random() * 10_000)}@${["gmail.example", "outlook.example", "uni.example"][index % 3]}`;
        break;
      default: {
        const unknown: never = kind;
        throw new Error(`unknown address kind ${String(unknown)}`);
      }
    }
    out.push({ address, kind });
  }
  return out;
}

/** Socketmap requests for one map over the relay recipient mix. */
export function socketmapPool(
  keys: DirectoryKeys,
  map: string,
  count: number,
  seed: number,
): SocketmapItem[] {
  return recipientAddresses(keys, count, seed).map(({ address }) => ({ map, key: address }));
}

/** Dict userdb/passdb lookups as Dovecot auth sends them (`shared/<db>/<user>`, user in its own field). */
export function dictPool(keys: DirectoryKeys, count: number, seed: number, unknownShare = 0.1): DictItem[] {
  const random = seededRandom(seed);
  const login = zipfDrawer(keys.logins, random);
  const out: DictItem[] = [];
  for (let index = 0; index < count; index++) {
    const user = random() < unknownShare ? `nouser${Math.floor(random() * 100_000)}` : login();
    // A login looks up passdb then userdb; IMAP/LMTP userdb alone is as common.
    const database = random() < 0.4 ? "passdb" : "userdb";
    out.push({ key: `shared/${database}/${user}`, user });
  }
  return out;
}

function hex(random: () => number, digits: number): string {
  let text = "";
  for (let index = 0; index < digits; index++) text += Math.floor(random() * 16).toString(16);
  return text;
}

/**
 * RCPT-state policy requests with all 29 attributes of Postfix 3.7: senders
 * and client networks Zipf-skewed, a quarter authenticated submissions
 * (sasl_username, sender of that user, internal client), the rest inbound
 * mail from outside to local recipients (some unknown).
 */
export function policyPool(keys: DirectoryKeys, count: number, seed: number): PolicyItem[] {
  const random = seededRandom(seed);
  const recipients = recipientAddresses(keys, count, seed + 1);
  const localUser = zipfDrawer(keys.logins, random);
  const externalSenders = Array.from(
    { length: 20_000 },
    (_, index) =>
      `sender${index}@${["gmail.example", "outlook.example", "uni.example", "lists.example"][index % 4]}`,
  );
  const externalSender = zipfDrawer(externalSenders, random);
  const clientAddresses = Array.from(
    { length: 5_000 },
    (_, index) => `198.51.${(index >> 8) & 255}.${index & 255}`,
  );
  const externalClient = zipfDrawer(clientAddresses, random);
  const internalClient = zipfDrawer(
    Array.from({ length: 500 }, (_, index) => `10.4.${index >> 8}.${index & 255}`),
    random,
  );
  const out: PolicyItem[] = [];
  for (let index = 0; index < count; index++) {
    const submission = random() < 0.25;
    const login = submission ? localUser() : "";
    const client = submission ? internalClient() : externalClient();
    const recipient = recipients[index]!.address;
    const rcptNumber = random() < 0.8 ? 1 : 2 + Math.floor(random() * 5);
    const tls = random() < 0.8;
    out.push({
      request: "smtpd_access_policy",
      protocol_state: "RCPT",
      protocol_name: "ESMTP",
      client_address: client,
      client_name: submission
        ? `ws-${client.replaceAll(".", "-")}.cs.example.org`
        : random() < 0.3
          ? "unknown"
          : `mx${client.split(".")[3]}.remote.example`,
      client_port: String(1024 + Math.floor(random() * 60_000)),
      reverse_client_name: submission
        ? `ws-${client.replaceAll(".", "-")}.cs.example.org`
        : `mx${client.split(".")[3]}.remote.example`,
      server_address: "192.0.2.25",
      server_port: submission ? "587" : "25",
      helo_name: submission ? "laptop.cs.example.org" : `mx${client.split(".")[3]}.remote.example`,
      sender: submission ? `${login}@cs.example.org` : random() < 0.05 ? "" : externalSender(),
      recipient,
      recipient_count: "0",
      queue_id: rcptNumber > 1 ? hex(random, 10).toUpperCase() : "",
      instance: `${hex(random, 4)}.${hex(random, 8)}.${hex(random, 5)}.0`,
      size: String(1_000 + Math.floor(random() * 200_000)),
      sasl_method: submission ? "PLAIN" : "",
      sasl_username: login,
      encryption_protocol: tls ? "TLSv1.3" : "",
      encryption_cipher: tls ? "TLS_AES_256_GCM_SHA384" : "",
      encryption_keysize: tls ? "256" : "0",
    });
  }
  return out;
}

/** Keys in the generated directory's naming scheme, for suites that need no snapshot (policy). */
export function syntheticDirectoryKeys(users: number): DirectoryKeys {
  const logins = Array.from({ length: users }, (_, index) => `csd${100000 + index}`);
  return {
    primaries: logins.map((login) => `${login}@cs.example.org`),
    alternates: [],
    logins,
    inactive: [],
    groups: Array.from(
      { length: Math.max(5, Math.round(users / 20)) },
      (_, index) => `gen-group-${index}@cs.example.org`,
    ),
  };
}
