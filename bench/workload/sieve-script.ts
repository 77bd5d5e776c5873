/**
 * A large Sieve script of the kind a user's filter set grows into: a chain
 * of filing rules (header, address, envelope and size tests, lists joined
 * with anyof/allof, :regex and :value comparisons, flags and variables),
 * then a vacation reply. Only extensions Pigeonhole enables by default, so
 * Dovecot's sievec accepts it without configuration. Pure: the same line
 * count gives the same script.
 */

export const SIEVE_SCRIPT_REQUIRES = [
  "fileinto",
  "envelope",
  "imap4flags",
  "variables",
  "relational",
  "comparator-i;ascii-numeric",
  "regex",
  "copy",
  "vacation",
];

/** One rule, 5 lines. */
function rule(index: number): string[] {
  const folder = `Lists/list-${index}`;
  switch (index % 5) {
    case 0:
      return [
        `if header :contains "list-id" "<list-${index}.lists.example.org>" {`,
        `    fileinto "${folder}";`,
        "    stop;",
        "}",
        `# rule ${index}: mailing list`,
      ];
    case 1:
      return [
        `if anyof (address :domain :is "from" "sender${index}.example", envelope :localpart :is "from" "bounce-${index}") {`,
        `    addflag "\\\\Seen";`,
        `    fileinto :copy "${folder}";`,
        "}",
        `# rule ${index}: sender domain`,
      ];
    case 2:
      return [
        `if allof (header :regex "subject" "^\\\\[ticket-${index}\\\\] .*$", size :under 200K) {`,
        `    set "ticket" "${index}";`,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Sieve variable, not a template
        '    fileinto "Tickets/${ticket}";',
        "}",
        `# rule ${index}: ticket system`,
      ];
    case 3:
      return [
        `if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "${(index % 9) + 1}" {`,
        `    setflag "\\\\Flagged";`,
        `    fileinto "${folder}";`,
        "}",
        `# rule ${index}: scored`,
      ];
    default:
      return [
        `if address :is ["to", "cc"] ["project-${index}@cs.example.org", "team-${index}@cs.example.org"] {`,
        `    fileinto "Projects/project-${index}";`,
        "    stop;",
        "}",
        `# rule ${index}: project alias`,
      ];
  }
}

const VACATION = [
  'vacation :days 7 :subject "Away" :addresses ["me@cs.example.org"] "I am away until Monday.";',
];

/** A valid script of exactly `lines` lines (at least 10), ending with a newline. */
export function generateSieveScript(lines: number): string {
  if (!Number.isSafeInteger(lines) || lines < 10) throw new RangeError(`lines: ${lines} is below 10`);
  const head = [`require [${SIEVE_SCRIPT_REQUIRES.map((name) => `"${name}"`).join(", ")}];`, "# generated"];
  const out = [...head];
  for (let index = 0; out.length + 5 + VACATION.length <= lines; index++) out.push(...rule(index));
  while (out.length + VACATION.length < lines) out.push("# padding");
  out.push(...VACATION);
  return `${out.join("\n")}\n`;
}
