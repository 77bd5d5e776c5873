/**
 * The two network dependencies doctor checks besides emailng's own sockets:
 * LDAP (connect and bind with the [ldap] settings, as sync-agent and
 * verifyd's live lookups do) and Redis (connect and PING with the [redis]
 * table, as policyd and quotad do). Both bounded by the configured
 * timeouts; a failure is a finding with a fix, never an exception.
 */
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { connectLdap, LdapRefusedError, ldapConnectOptionsFromConfig } from "../core/ldap/client.js";
import { openRedis, redisCall, redisConfigured } from "../core/redis/client.js";
import { type Finding, fail, ok, skip } from "./findings.js";

export async function checkLdap(config: DeepReadonly<Config>): Promise<Finding> {
  const check = "ldap";
  if (config.ldap.urls.length === 0)
    return skip(check, "ldap.urls is empty: this host works from the snapshot");
  try {
    const options = await ldapConnectOptionsFromConfig(config);
    const connection = await connectLdap(options);
    await connection.close();
    const who = config.ldap.bind_dn === "" ? "anonymously" : `as ${config.ldap.bind_dn}`;
    return ok(check, `${connection.url} answers and accepts a bind ${who}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof LdapRefusedError) {
      return fail(
        check,
        `LDAP refused: ${message}`,
        "check ldap.bind_dn, the password in ldap.bind_password_file and ldap.ca_file",
      );
    }
    return fail(
      check,
      `no LDAP server answered: ${message}`,
      "check ldap.urls, the firewall to port 389/636 and the servers (ldapwhoami -H URL -x); " +
        "meanwhile sync keeps the last snapshot",
    );
  }
}

export async function checkRedis(config: DeepReadonly<Config>): Promise<Finding> {
  const check = "redis";
  const settings = config.redis;
  if (!redisConfigured(settings)) return skip(check, "[redis] is not configured: stores are embedded");
  const where =
    settings.url !== ""
      ? settings.url.replace(/\/\/[^@/]*@/, "//")
      : `sentinels ${settings.sentinels.map((s) => `${s.host}:${s.port}`).join(", ")}`;
  let client: Awaited<ReturnType<typeof openRedis>> | undefined;
  try {
    client = await openRedis(settings, "emailng-doctor");
    const opened = client;
    // Connection errors surface as the failed wait below; without a listener ioredis prints them.
    opened.on("error", () => {});
    // No offline queue: wait for the connection itself, bounded by connect_timeout.
    await new Promise<void>((resolve, reject) => {
      if (opened.status === "ready") return resolve();
      const timer = setTimeout(
        () => reject(new Error(`not connected within ${settings.connect_timeout} ms`)),
        settings.connect_timeout + 500,
      );
      opened.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const answer = await redisCall("PING", () => opened.ping());
    return ok(check, `${where} answers PING with ${answer}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return fail(
      check,
      `${where}: ${message}`,
      "check redis.url (or sentinels), redis.password_file and the firewall; meanwhile policyd answers its failure_action and quotad its unavailable reply",
    );
  } finally {
    client?.disconnect();
  }
}
