/**
 * Looks inside the zod configuration schema: which keys a table allows (for
 * "did you mean …?" on a misspelt key) and the full list of key paths (so a
 * test can prove the example file documents every key). Only the few zod
 * node types the schema uses are understood; everything else is a leaf.
 */
import type { z } from "zod";

type Schema = z.core.$ZodType;

interface Definition {
  type: string;
  innerType?: Schema;
  in?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
}

function definition(schema: Schema): Definition {
  return schema._zod.def as unknown as Definition;
}

/** Strips defaults, optionals and pipes (a transform's input side) to the structural node. */
export function unwrapSchema(schema: Schema): Schema {
  let current = schema;
  for (;;) {
    const def = definition(current);
    if (def.innerType) current = def.innerType;
    else if (def.type === "pipe" && def.in) current = def.in;
    else return current;
  }
}

/** The keys allowed in the table at `path` (array indexes step into the element), if it is a table. */
export function tableShapeAt(root: Schema, path: readonly PropertyKey[]): Record<string, Schema> | undefined {
  let current = unwrapSchema(root);
  for (const segment of path) {
    const def = definition(current);
    if (def.type === "array" && def.element && typeof segment === "number")
      current = unwrapSchema(def.element);
    else if (def.type === "object" && def.shape && typeof segment === "string" && segment in def.shape) {
      current = unwrapSchema(def.shape[segment]!);
    } else return undefined;
  }
  const def = definition(current);
  return def.type === "object" ? def.shape : undefined;
}

/**
 * Every leaf key as a dotted path, arrays of tables flattened without index:
 * "ldap.timeout", "policyd.listen.unix", "policyd.metrics.listen".
 */
export function keyPaths(root: Schema, prefix = ""): string[] {
  const node = unwrapSchema(root);
  const def = definition(node);
  if (def.type === "array" && def.element) {
    const element = unwrapSchema(def.element);
    return definition(element).type === "object" ? keyPaths(element, prefix) : [prefix];
  }
  if (def.type !== "object" || !def.shape) return [prefix];
  return Object.entries(def.shape).flatMap(([key, child]) =>
    keyPaths(child, prefix ? `${prefix}.${key}` : key),
  );
}
