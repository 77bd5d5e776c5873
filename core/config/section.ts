import { z } from "zod";

/**
 * A strict table that may be left out of the file. `prefault` (not `default`)
 * runs the empty table through the schema, so the keys' own defaults apply.
 */
export function section<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const table = z.strictObject(shape);
  // Every key in a section has a default, so {} is valid input; the generic
  // shape cannot show that to the type checker.
  return table.prefault({} as z.input<typeof table>);
}
