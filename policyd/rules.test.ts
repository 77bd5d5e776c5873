import { describe, expect, it } from "vitest";
import { loadConfig, parseConfigText } from "../core/config/load.js";
import { configFrom } from "../test/wire/policyd-fixtures.js";
import { compilePolicy, windowLimit } from "./rules.js";

describe("the example configuration's [policyd]", () => {
  it("compiles into rules, classes, greylisting, lists and burst settings", async () => {
    const loaded = await loadConfig(new URL("../deploy/emailng.example.toml", import.meta.url).pathname);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const compiled = compilePolicy(loaded.config);
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.errors));
    const { settings } = compiled;
    expect(settings.rules.map((rule) => [rule.name, rule.key, rule.metric, rule.mode])).toEqual([
      ["login-messages", "sasl_login", "messages", "enforce"],
      ["login-recipients", "sasl_login", "recipients", "enforce"],
      ["client-messages", "client_address", "messages", "shadow"],
    ]);
    const daily = settings.rules[0]!.windows[1]!;
    expect([windowLimit(daily, null), windowLimit(daily, "staff"), windowLimit(daily, "students")]).toEqual([
      500, 3000, 200,
    ]);
    expect(settings.greylist.exemptClientNames).toEqual(["google.com", "outlook.com"]);
    expect(settings.protectedLists.lists.get("csall")?.allowedGroups).toEqual(["csstaff", "csfaculty"]);
  });
});

describe("invalid rules", () => {
  it.each([
    {
      name: "an undefined class in class_limits",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "global"\n[[policyd.rules.windows]]\nperiod = "1m"\nlimit = 1\nclass_limits = { vip = 5 }\n`,
      path: "policyd.rules[0].windows[0].class_limits.vip",
      message: "class vip is not defined",
    },
    {
      name: "an undefined class in except_classes",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "global"\nexcept_classes = ["vip"]\n[[policyd.rules.windows]]\nlimit = 1\n`,
      path: "policyd.rules[0].except_classes[0]",
      message: "class vip is not defined",
    },
    {
      name: "a Redis store without [redis]",
      toml: `[policyd.store]\nbackend = "redis"\n`,
      path: "policyd.store.backend",
      message: "redis needs a [redis] table with url or sentinels",
    },
    {
      name: "a relative alert command",
      toml: `[policyd.burst]\nalert_command = ["notify"]\n`,
      path: "policyd.burst.alert_command[0]",
      message: '"notify" is not an absolute path',
    },
  ])("refuses $name", ({ toml, path, message }) => {
    const compiled = compilePolicy(configFrom(toml));
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) expect(compiled.errors).toContainEqual(expect.objectContaining({ path, message }));
  });

  it.each([
    {
      name: "two rules with one name",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "global"\n[[policyd.rules.windows]]\nlimit = 1\n[[policyd.rules]]\nname = "r"\nkey = "sender"\n[[policyd.rules.windows]]\nlimit = 1\n`,
      path: "policyd.rules[1].name",
    },
    {
      name: "a rule without windows",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "global"\n`,
      path: "policyd.rules[0].windows",
    },
    {
      name: "two windows with one period",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "global"\n[[policyd.rules.windows]]\nperiod = "1m"\nlimit = 1\n[[policyd.rules.windows]]\nperiod = "60s"\nlimit = 2\n`,
      path: "policyd.rules[0].windows[1].period",
    },
    {
      name: "an unknown key kind",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "helo"\n[[policyd.rules.windows]]\nlimit = 1\n`,
      path: "policyd.rules[0].key",
    },
    {
      name: "a class with neither groups nor attribute",
      toml: `[[policyd.classes]]\nname = "c"\n`,
      path: "policyd.classes[0].groups",
    },
    {
      name: "an IPv6 prefix above 128",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "client_address"\nipv6_prefix = 129\n[[policyd.rules.windows]]\nlimit = 1\n`,
      path: "policyd.rules[0].ipv6_prefix",
    },
    {
      name: "a window of less than a second",
      toml: `[[policyd.rules]]\nname = "r"\nkey = "global"\n[[policyd.rules.windows]]\nperiod = "500ms"\nlimit = 1\n`,
      path: "policyd.rules[0].windows[0].period",
    },
  ])("the schema refuses $name", ({ toml, path }) => {
    const result = parseConfigText(toml);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((issue) => issue.path)).toContain(path);
  });
});
