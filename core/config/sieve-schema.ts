/**
 * The [sieve] table used by `emailng sieve …`: the global spam-filing policy
 * and ManageSieve client defaults. Documented in deploy/emailng.example.toml.
 */
import { section } from "./section.js";

export const sieveSection = section({});
