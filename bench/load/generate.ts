/**
 * The load generator as a process of its own: `node dist-bench/bench/load/generate.js SPEC.json`.
 * The benchmark runner starts one per measurement, so the generator's CPU
 * and heap are separate from both the server under test (another child,
 * whose RSS and CPU time the runner reads from /proc) and the runner itself
 * (which holds directories and results and may collect garbage at any
 * time). Reads the request pool named in the spec, encodes every request
 * before the clock starts, drives the target and prints one JSON result.
 */
import { readFileSync } from "node:fs";
import type { DictItem } from "./dict-client.js";
import { dictWireClient } from "./dict-client.js";
import {
  type ConnectionFactory,
  type DriverOptions,
  drive,
  type Endpoint,
  rawConnectionFactory,
} from "./driver.js";
import { type LdapLoadOptions, ldapConnectionFactory } from "./ldap-client.js";
import { type PolicyItem, policyWireClient } from "./policy-client.js";
import { type SocketmapItem, socketmapWireClient } from "./socketmap-client.js";

export type LoadProtocol = "socketmap" | "policy" | "dict" | "ldap";

export interface LoadSpec extends DriverOptions {
  protocol: LoadProtocol;
  endpoint: Endpoint;
  /** JSON file: an array of items for the protocol (socketmap and ldap: {map,key}; policy: attributes; dict: {key,user}). */
  poolFile: string;
  /** Dict name sent in the hello (dict only). */
  dictName?: string;
  /** LDAP bind and search settings (ldap only; the endpoint is then ignored). */
  ldap?: Omit<LdapLoadOptions, "requestTimeoutMs">;
}

function factoryFor(spec: LoadSpec, pool: unknown[]): ConnectionFactory {
  switch (spec.protocol) {
    case "socketmap": {
      const items = pool as SocketmapItem[];
      return rawConnectionFactory(
        spec.endpoint,
        socketmapWireClient,
        items.map(socketmapWireClient.encode),
        spec.requestTimeoutMs,
      );
    }
    case "policy": {
      const items = pool as PolicyItem[];
      return rawConnectionFactory(
        spec.endpoint,
        policyWireClient,
        items.map(policyWireClient.encode),
        spec.requestTimeoutMs,
      );
    }
    case "dict": {
      const client = dictWireClient(spec.dictName ?? "auth");
      const items = pool as DictItem[];
      return rawConnectionFactory(spec.endpoint, client, items.map(client.encode), spec.requestTimeoutMs);
    }
    case "ldap": {
      if (spec.ldap === undefined) throw new Error("ldap load needs the ldap settings");
      const keys = (pool as SocketmapItem[]).map((item) => item.key);
      return ldapConnectionFactory(keys, { ...spec.ldap, requestTimeoutMs: spec.requestTimeoutMs });
    }
    default: {
      const unknown: never = spec.protocol;
      throw new Error(`unknown protocol ${String(unknown)}`);
    }
  }
}

async function main(): Promise<void> {
  const specPath = process.argv[2];
  if (specPath === undefined) throw new Error("usage: generate SPEC.json");
  const spec = JSON.parse(readFileSync(specPath, "utf8")) as LoadSpec;
  const pool = JSON.parse(readFileSync(spec.poolFile, "utf8")) as unknown[];
  if (!Array.isArray(pool) || pool.length === 0) throw new Error(`${spec.poolFile}: empty request pool`);
  const result = await drive(factoryFor(spec, pool), pool.length, spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
