/**
 * quotad's own keys under [quotad], beside the listener keys every daemon
 * shares (schema.ts daemonSection): replies, group policy, grace, staleness,
 * the usage feed and the usage store. Documented in
 * deploy/emailng.example.toml.
 */
import type { z } from "zod";

export const quotadSettings = {} satisfies z.core.$ZodLooseShape;
