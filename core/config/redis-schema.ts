/**
 * The [redis] table: the shared store policyd's counters and quotad's usage
 * move to when several relays must agree. Either one server (`url`) or a
 * Sentinel group (`sentinels` + `sentinel_master`), never both. Commands get a
 * short timeout so that a dead store turns into the configured failure answer
 * long before Postfix's own policy timeout.
 */
import { z } from "zod";
import { optionalAbsolutePath, tcpAddress } from "./fields.js";
import { section } from "./section.js";
import { duration, integer } from "./units.js";

export const redisSection = section({
  url: z
    .string()
    .refine((text) => text === "" || /^rediss?:\/\/[^\s]+$/.test(text), {
      message: 'must be a redis:// or rediss:// URL, or "" when unused',
      params: { fix: 'write e.g. "redis://127.0.0.1:6379/0"' },
    })
    .default(""),
  sentinels: z.array(tcpAddress()).default([]),
  sentinel_master: z.string().default(""),
  password_file: optionalAbsolutePath(),
  database: integer({ default: 0, min: 0, max: 15 }),
  key_prefix: z.string().max(64).default("emailng:"),
  connect_timeout: duration({ default: "2s", min: "100ms", max: "30s" }),
  command_timeout: duration({ default: "500ms", min: "10ms", max: "10s" }),
}).superRefine((redis, context) => {
  if (redis.url !== "" && redis.sentinels.length > 0) {
    context.addIssue({
      code: "custom",
      path: ["sentinels"],
      message: "cannot be used together with url",
      params: { fix: "use either url (one server) or sentinels + sentinel_master" },
    });
  }
  if (redis.sentinels.length > 0 && redis.sentinel_master === "") {
    context.addIssue({
      code: "custom",
      path: ["sentinel_master"],
      message: "is required when sentinels are set",
      params: { fix: 'name the master the sentinels monitor, e.g. "emailng"' },
    });
  }
});
