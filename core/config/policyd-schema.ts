/**
 * policyd's own keys under [policyd], beside the listener keys every daemon
 * shares (schema.ts daemonSection): rules, greylisting, protected lists,
 * burst detection and the counter store. Documented in
 * deploy/emailng.example.toml.
 */
import type { z } from "zod";

export const policydSettings = {} satisfies z.core.$ZodLooseShape;
