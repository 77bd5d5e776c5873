/**
 * Every command and test the checker knows, declared as data: RFC 5228
 * core and the extensions Pigeonhole ships. The rules mirror what
 * Pigeonhole 0.5 checks when it compiles a script (argument types, tags,
 * which values must be valid when they are constant), so a script this
 * accepts is one managesieved will store. Value checks that only warn in
 * Pigeonhole (header names, IMAP flags, date parts) only warn here.
 */
import type { CheckedNode, CommandSpec, TagSpec, ValidationContext } from "./spec-types.js";
import { ADDRESS_HEADERS, checkAddress, checkNotifyUri, isValidHeaderName } from "./values.js";

const tag = (name: string, slot: string, extension: string | null = null, parameter?: TagSpec["parameter"]) =>
  ({ name, slot, extension, ...(parameter === undefined ? {} : { parameter }) }) satisfies TagSpec;

export const COMPARATOR_TAGS: readonly TagSpec[] = [tag("comparator", ":comparator", null, "string")];
export const MATCH_TYPE_TAGS: readonly TagSpec[] = [
  tag("is", "MATCH-TYPE"),
  tag("contains", "MATCH-TYPE"),
  tag("matches", "MATCH-TYPE"),
  tag("regex", "MATCH-TYPE", "regex"),
  tag("count", "MATCH-TYPE", "relational", "string"),
  tag("value", "MATCH-TYPE", "relational", "string"),
];
export const ADDRESS_PART_TAGS: readonly TagSpec[] = [
  tag("all", "ADDRESS-PART"),
  tag("localpart", "ADDRESS-PART"),
  tag("domain", "ADDRESS-PART"),
  tag("user", "ADDRESS-PART", "subaddress"),
  tag("detail", "ADDRESS-PART", "subaddress"),
];
const INDEX_TAGS: readonly TagSpec[] = [
  tag("index", ":index", "index", "number"),
  tag("last", ":last", "index"),
];
const MIME_BASIC_TAGS: readonly TagSpec[] = [
  tag("mime", ":mime", "mime"),
  tag("anychild", ":anychild", "mime"),
];
const MIME_OPTION_TAGS: readonly TagSpec[] = [
  tag("type", ":type", "mime"),
  tag("subtype", ":subtype", "mime"),
  tag("contenttype", ":contenttype", "mime"),
  tag("param", ":param", "mime", "string-list"),
];
const MATCHING = [...COMPARATOR_TAGS, ...MATCH_TYPE_TAGS];
const COPY = tag("copy", ":copy", "copy");
const FLAGS = tag("flags", ":flags", "imap4flags", "string-list");

/** The set modifiers by precedence group (RFC 5229 4.1): two of one group conflict. */
export const SET_MODIFIER_TAGS: readonly TagSpec[] = [
  tag("lower", "modifier-40"),
  tag("upper", "modifier-40"),
  tag("lowerfirst", "modifier-30"),
  tag("upperfirst", "modifier-30"),
  tag("quotewildcard", "modifier-20"),
  tag("encodeurl", "modifier-15", "enotify"),
  tag("length", "modifier-10"),
];

const DATE_PARTS = new Set([
  "year",
  "month",
  "day",
  "date",
  "julian",
  "hour",
  "minute",
  "second",
  "time",
  "iso8601",
  "std11",
  "zone",
  "weekday",
]);

function constantString(node: CheckedNode, context: ValidationContext, index: number): string | null {
  const argument = node.positional[index];
  return argument?.kind === "string" ? context.constant(argument) : null;
}

function checkAddressArgument(
  context: ValidationContext,
  argument: CheckedNode["positional"][number] | null,
  what: string,
): void {
  if (argument?.kind !== "string") return;
  const value = context.constant(argument);
  if (value === null) return;
  const problem = checkAddress(value);
  if (problem !== null) context.error(argument, `${what} '${value}' is not a valid address: ${problem}`);
}

const core: CommandSpec[] = [
  { name: "stop", kind: "command", extensions: [], tags: [], positional: [], block: "forbidden" },
  { name: "keep", kind: "command", extensions: [], tags: [FLAGS], positional: [], block: "forbidden" },
  { name: "discard", kind: "command", extensions: [], tags: [], positional: [], block: "forbidden" },
  {
    name: "redirect",
    kind: "command",
    extensions: [],
    tags: [COPY],
    positional: ["string"],
    block: "forbidden",
    check: (node, context) =>
      checkAddressArgument(context, node.positional[0] ?? null, "the redirect address"),
  },
  { name: "true", kind: "test", extensions: [], tags: [], positional: [] },
  { name: "false", kind: "test", extensions: [], tags: [], positional: [] },
  { name: "not", kind: "test", extensions: [], tags: [], positional: [], subtests: "one" },
  { name: "anyof", kind: "test", extensions: [], tags: [], positional: [], subtests: "list" },
  { name: "allof", kind: "test", extensions: [], tags: [], positional: [], subtests: "list" },
  {
    name: "exists",
    kind: "test",
    extensions: [],
    tags: [...MIME_BASIC_TAGS],
    positional: ["string-list"],
    headerNames: 0,
  },
  {
    name: "header",
    kind: "test",
    extensions: [],
    tags: [...MATCHING, ...INDEX_TAGS, ...MIME_BASIC_TAGS, ...MIME_OPTION_TAGS],
    positional: ["string-list", "string-list"],
    keyList: 1,
    headerNames: 0,
  },
  {
    name: "address",
    kind: "test",
    extensions: [],
    tags: [...MATCHING, ...ADDRESS_PART_TAGS, ...INDEX_TAGS, ...MIME_BASIC_TAGS],
    positional: ["string-list", "string-list"],
    keyList: 1,
    check: (node, context) => {
      for (const item of context.items(node.positional[0]!)) {
        const name = context.constant(item);
        if (name === null) continue;
        if (!isValidHeaderName(name) && name !== "") {
          context.warning(item, `'${name}' is not a valid header field name`);
        }
        if (!ADDRESS_HEADERS.has(name.toLowerCase())) {
          context.error(
            item,
            `the address test cannot look at '${name}': it is not an address header (use header, or one of ${[...ADDRESS_HEADERS].slice(0, 6).join(", ")}, …)`,
          );
        }
      }
    },
  },
  {
    name: "size",
    kind: "test",
    extensions: [],
    tags: [tag("over", "size-limit"), tag("under", "size-limit")],
    positional: ["number"],
    check: (node, context) => {
      if (!node.slots.has("size-limit")) {
        context.error(node.node, "the size test needs :over or :under before the limit");
      }
    },
  },
];

const extensionCommands: CommandSpec[] = [
  {
    name: "fileinto",
    kind: "command",
    extensions: ["fileinto"],
    tags: [COPY, FLAGS, tag("create", ":create", "mailbox")],
    positional: ["string"],
    block: "forbidden",
  },
  {
    name: "reject",
    kind: "command",
    extensions: ["reject"],
    tags: [],
    positional: ["string"],
    block: "forbidden",
  },
  {
    name: "ereject",
    kind: "command",
    extensions: ["ereject"],
    tags: [],
    positional: ["string"],
    block: "forbidden",
  },
  {
    name: "envelope",
    kind: "test",
    extensions: ["envelope"],
    tags: [...MATCHING, ...ADDRESS_PART_TAGS],
    positional: ["string-list", "string-list"],
    keyList: 1,
    check: (node, context) => {
      for (const item of context.items(node.positional[0]!)) {
        const part = context.constant(item);
        if (part !== null && !["from", "to", "auth"].includes(part.toLowerCase())) {
          context.error(item, `envelope part '${part}' is not supported (use "from", "to" or "auth")`);
        }
      }
    },
  },
  {
    name: "vacation",
    kind: "command",
    extensions: ["vacation"],
    tags: [
      tag("days", ":days", null, "number"),
      tag("seconds", ":days", "vacation-seconds", "number"),
      tag("subject", ":subject", null, "string"),
      tag("from", ":from", null, "string"),
      tag("addresses", ":addresses", null, "string-list"),
      tag("mime", ":mime"),
      tag("handle", ":handle", null, "string"),
    ],
    positional: ["string"],
    block: "forbidden",
    check: (node, context) => {
      checkAddressArgument(context, node.tags.get("from")?.parameter ?? null, "the :from address");
      const days = node.tags.get("days")?.parameter;
      if (days?.kind === "number" && days.value < 1n) {
        context.warning(days, ":days is below the minimum (1); the server uses its minimum instead");
      }
      const seconds = node.tags.get("seconds")?.parameter;
      if (seconds?.kind === "number" && seconds.value < 60n) {
        context.warning(
          seconds,
          ":seconds is below the server's usual minimum; the server uses its minimum instead",
        );
      }
    },
  },
  {
    name: "setflag",
    kind: "command",
    extensions: ["imap4flags"],
    tags: [],
    positional: { min: 1, max: 2 },
    block: "forbidden",
    check: (node, context) => checkFlagArguments(node, context, "setflag command"),
  },
  {
    name: "addflag",
    kind: "command",
    extensions: ["imap4flags"],
    tags: [],
    positional: { min: 1, max: 2 },
    block: "forbidden",
    check: (node, context) => checkFlagArguments(node, context, "addflag command"),
  },
  {
    name: "removeflag",
    kind: "command",
    extensions: ["imap4flags"],
    tags: [],
    positional: { min: 1, max: 2 },
    block: "forbidden",
    check: (node, context) => checkFlagArguments(node, context, "removeflag command"),
  },
  {
    name: "hasflag",
    kind: "test",
    extensions: ["imap4flags"],
    tags: MATCHING,
    positional: { min: 1, max: 2 },
    check: (node, context) => checkFlagArguments(node, context, "hasflag test"),
  },
  {
    name: "include",
    kind: "command",
    extensions: ["include"],
    tags: [
      tag("personal", "location"),
      tag("global", "location"),
      tag("once", ":once"),
      tag("optional", ":optional"),
    ],
    positional: ["string"],
    block: "forbidden",
    check: checkInclude,
  },
  { name: "return", kind: "command", extensions: ["include"], tags: [], positional: [], block: "forbidden" },
  {
    name: "global",
    kind: "command",
    extensions: ["include"],
    tags: [],
    positional: ["string-list"],
    block: "forbidden",
    check: (node, context) => {
      if (!context.enabled("variables")) {
        context.error(node.node, 'the global command needs the variables extension (require "variables")');
        return;
      }
      for (const item of context.items(node.positional[0]!)) context.declareGlobal(item);
    },
  },
  {
    name: "set",
    kind: "command",
    extensions: ["variables"],
    tags: SET_MODIFIER_TAGS,
    positional: ["string", "string"],
    block: "forbidden",
    check: (node, context) => {
      const name = node.positional[0];
      if (name?.kind === "string") context.assignable(name, "set");
    },
  },
  {
    name: "string",
    kind: "test",
    extensions: ["variables"],
    tags: MATCHING,
    positional: ["string-list", "string-list"],
    keyList: 1,
  },
  {
    name: "body",
    kind: "test",
    extensions: ["body"],
    tags: [
      ...MATCHING,
      tag("raw", "body-transform"),
      tag("content", "body-transform", null, "string-list"),
      tag("text", "body-transform"),
    ],
    positional: ["string-list"],
    keyList: 0,
  },
  ...notifySpecs(),
  {
    name: "environment",
    kind: "test",
    extensions: ["environment"],
    tags: MATCHING,
    positional: ["string", "string-list"],
    keyList: 1,
  },
  { name: "mailboxexists", kind: "test", extensions: ["mailbox"], tags: [], positional: ["string-list"] },
  {
    name: "date",
    kind: "test",
    extensions: ["date"],
    tags: [tag("zone", ":zone", null, "string"), tag("originalzone", ":zone"), ...MATCHING, ...INDEX_TAGS],
    positional: ["string", "string", "string-list"],
    keyList: 2,
    headerNames: 0,
    check: (node, context) => checkDate(node, context, 1),
  },
  {
    name: "currentdate",
    kind: "test",
    extensions: ["date"],
    tags: [tag("zone", ":zone", null, "string"), ...MATCHING],
    positional: ["string", "string-list"],
    keyList: 1,
    check: (node, context) => checkDate(node, context, 0),
  },
  { name: "ihave", kind: "test", extensions: ["ihave"], tags: [], positional: ["string-list"] },
  {
    name: "error",
    kind: "command",
    extensions: ["ihave"],
    tags: [],
    positional: ["string"],
    block: "forbidden",
  },
  {
    name: "duplicate",
    kind: "test",
    extensions: ["duplicate"],
    tags: [
      tag("handle", ":handle", null, "string"),
      tag("header", ":header", null, "string"),
      tag("uniqueid", ":uniqueid", null, "string"),
      tag("seconds", ":seconds", null, "number"),
      tag("last", ":last"),
    ],
    positional: [],
    check: (node, context) => {
      if (node.tags.has("header") && node.tags.has("uniqueid")) {
        context.error(node.node, "the duplicate test takes :header or :uniqueid, not both");
      }
      const header = node.tags.get("header")?.parameter;
      if (header?.kind === "string") {
        const name = context.constant(header);
        if (name !== null && !isValidHeaderName(name)) {
          context.warning(header, `'${name}' is not a valid header field name`);
        }
      }
    },
  },
  ...editheaderSpecs(),
  ...mimeSpecs(),
  {
    name: "spamtest",
    kind: "test",
    extensions: ["spamtest", "spamtestplus"],
    tags: [tag("percent", ":percent", "spamtestplus"), ...MATCHING],
    positional: ["string"],
    keyList: 0,
  },
  {
    name: "virustest",
    kind: "test",
    extensions: ["virustest"],
    tags: MATCHING,
    positional: ["string"],
    keyList: 0,
  },
];

function checkFlagArguments(node: CheckedNode, context: ValidationContext, what: string): void {
  const [first, second] = node.positional;
  const flags = second ?? first;
  if (second !== undefined) {
    if (!context.enabled("variables")) {
      context.error(
        node.node,
        `the ${what} takes a variable name only when the variables extension is active`,
      );
      return;
    }
    if (first?.kind !== "string" && first?.kind !== "string-list") {
      context.error(first ?? node.node, `the ${what} expects a variable name (a string) first`);
      return;
    }
    if (node.spec.kind === "command") {
      if (first.kind !== "string") {
        context.error(first, `the ${what} expects a single variable name (a string), not a string list`);
        return;
      }
      context.assignable(first, what);
    } else {
      for (const item of context.items(first)) {
        const name = context.constant(item);
        if (name !== null && /^[A-Za-z_][A-Za-z0-9_]*\./.test(name)) {
          context.error(item, `variable '${name}' refers to an unknown namespace`);
        }
      }
    }
  }
  if (flags === undefined || (flags.kind !== "string" && flags.kind !== "string-list")) {
    context.error(flags ?? node.node, `the ${what} expects a list of flags (a string list)`);
    return;
  }
  for (const item of context.items(flags)) {
    const value = context.constant(item);
    if (value === null) continue;
    for (const flag of value.split(" ").filter((part) => part !== "")) {
      if (
        flag.startsWith("\\") &&
        !["\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"].includes(flag.toLowerCase())
      ) {
        context.warning(item, `IMAP flag '${flag}' is not a system flag and will be ignored`);
        break;
      }
    }
  }
}

function checkInclude(node: CheckedNode, context: ValidationContext): void {
  const argument = node.positional[0];
  if (argument?.kind !== "string") return;
  const name = context.constant(argument);
  if (name === null) {
    context.error(argument, "the script name of include must be a constant string");
    return;
  }
  if (name === "" || name.includes("/") || name === "." || name === ".." || /[\x00-\x1f\x7f]/.test(name)) {
    context.error(argument, `'${name}' is not a valid script name`);
    return;
  }
  const location = node.tags.has("global") ? "global" : "personal";
  const exists = context.includeExists?.(location, name);
  if (exists === false && !node.tags.has("optional")) {
    context.error(argument, `the included ${location} script '${name}' does not exist`);
  } else if (exists === true) {
    context.checkIncluded?.(location, name, argument);
  }
}

function checkDate(node: CheckedNode, context: ValidationContext, partIndex: number): void {
  const part = constantString(node, context, partIndex);
  if (part !== null && !DATE_PARTS.has(part.toLowerCase())) {
    context.warning(
      node.positional[partIndex]!,
      `date part '${part}' is not known; the test will never match`,
    );
  }
  const zone = node.tags.get("zone")?.parameter;
  if (zone?.kind === "string") {
    const value = context.constant(zone);
    if (value !== null && !/^[+-]\d{4}$/.test(value)) {
      context.warning(zone, `:zone '${value}' is not a time zone of the form +hhmm or -hhmm`);
    }
  }
}

function notifySpecs(): CommandSpec[] {
  return [
    {
      name: "notify",
      kind: "command",
      extensions: ["enotify"],
      tags: [
        tag("from", ":from", null, "string"),
        tag("importance", ":importance", null, "string"),
        tag("options", ":options", null, "string-list"),
        tag("message", ":message", null, "string"),
      ],
      positional: ["string"],
      block: "forbidden",
      check: (node, context) => {
        const importance = node.tags.get("importance")?.parameter;
        if (importance?.kind === "string") {
          const value = context.constant(importance);
          if (value !== null && !["1", "2", "3"].includes(value)) {
            context.error(importance, `:importance must be "1", "2" or "3", not '${value}'`);
          }
        }
        const options = node.tags.get("options")?.parameter;
        if (options !== undefined && options !== null) {
          for (const item of context.items(options)) {
            const value = context.constant(item);
            if (value !== null && !/^[A-Za-z0-9][A-Za-z0-9+\-.]*=/.test(value)) {
              context.error(item, `notify option '${value}' is not of the form name=value`);
            }
          }
        }
        const method = constantString(node, context, 0);
        if (method === null) return;
        const verdict = checkNotifyUri(method);
        for (const warning of verdict.warnings) context.warning(node.positional[0]!, warning);
        if (verdict.error !== null) {
          context.error(node.positional[0]!, `notify method: ${verdict.error}`);
          return;
        }
        checkAddressArgument(context, node.tags.get("from")?.parameter ?? null, "the :from address");
      },
    },
    {
      name: "valid_notify_method",
      kind: "test",
      extensions: ["enotify"],
      tags: [],
      positional: ["string-list"],
    },
    {
      name: "notify_method_capability",
      kind: "test",
      extensions: ["enotify"],
      tags: MATCHING,
      positional: ["string", "string", "string-list"],
      keyList: 2,
    },
  ];
}

function editheaderSpecs(): CommandSpec[] {
  const checkName = (node: CheckedNode, context: ValidationContext, what: string) => {
    const name = constantString(node, context, 0);
    if (name !== null && name !== "" && !isValidHeaderName(name)) {
      context.error(node.positional[0]!, `${what}: '${name}' is not a valid header field name`);
    }
    return name;
  };
  return [
    {
      name: "addheader",
      kind: "command",
      extensions: ["editheader"],
      tags: [tag("last", ":last")],
      positional: ["string", "string"],
      block: "forbidden",
      check: (node, context) => {
        checkName(node, context, "addheader");
      },
    },
    {
      name: "deleteheader",
      kind: "command",
      extensions: ["editheader"],
      tags: [tag("index", ":index", null, "number"), tag("last", ":last"), ...MATCHING],
      positional: ["string", "string-list"],
      optionalPositional: 1,
      keyList: 1,
      block: "forbidden",
      check: (node, context) => {
        const name = checkName(node, context, "deleteheader");
        if (name !== null && ["received", "auto-submitted"].includes(name.toLowerCase())) {
          context.warning(node.positional[0]!, `deleting '${name}' is forbidden; the server will refuse it`);
        }
      },
    },
  ];
}

function mimeSpecs(): CommandSpec[] {
  return [
    {
      name: "foreverypart",
      kind: "command",
      extensions: ["foreverypart"],
      tags: [tag("name", ":name", null, "string")],
      positional: [],
      block: "required",
    },
    {
      name: "break",
      kind: "command",
      extensions: ["foreverypart"],
      tags: [tag("name", ":name", null, "string")],
      positional: [],
      block: "forbidden",
      check: (node, context) => {
        const nameArgument = node.tags.get("name")?.parameter;
        const name = nameArgument?.kind === "string" ? context.constant(nameArgument) : null;
        if (nameArgument === undefined || nameArgument === null) {
          if (context.loops.length === 0) context.error(node.node, "break is not inside a foreverypart loop");
        } else if (name !== null && !context.loops.includes(name)) {
          context.error(node.node, `break is not inside a foreverypart loop named '${name}'`);
        }
      },
    },
    {
      name: "extracttext",
      kind: "command",
      extensions: ["extracttext"],
      tags: [...SET_MODIFIER_TAGS, tag("first", ":first", null, "number")],
      positional: ["string"],
      block: "forbidden",
      check: (node, context) => {
        if (context.loops.length === 0)
          context.error(node.node, "extracttext is not inside a foreverypart loop");
        const name = node.positional[0];
        if (name?.kind === "string") context.assignable(name, "extracttext");
      },
    },
  ];
}

const ALL = [...core, ...extensionCommands];

/** Commands and tests by name; a name may be both only in theory, so each kind has its map. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  ALL.filter((spec) => spec.kind === "command").map((spec) => [spec.name, spec]),
);
export const TESTS: ReadonlyMap<string, CommandSpec> = new Map(
  ALL.filter((spec) => spec.kind === "test").map((spec) => [spec.name, spec]),
);
