import { describe, expect, it } from "vitest";
import { parseConfigText } from "../config/load.js";
import type { DomainSet } from "../directory/model.js";
import {
  convertEntries,
  defaultMapping,
  type LdapMapping,
  mappingFromConfig,
  normaliseDn,
  requestedAttributes,
} from "./mapping.js";

const domains: DomainSet = { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: [] };
const base = "dc=cs,dc=example,dc=org";

describe("default mapping (department schema)", () => {
  const users = [
    {
      dn: `uid=gpapadop,ou=people,${base}`,
      uid: "gpapadop",
      mail: "GPapadop@cs.example.org",
      mailAlternateAddress: ["papadopoulos.georgios@cs.example.org", "gpapadop@cs.example.org"],
      mailQuota: "5368709120",
      mailUserStatus: "active",
      homeDirectory: "/home/gpapadop",
      uidNumber: "5001",
      gidNumber: "2001",
      employeeType: "faculty",
      userPassword: Buffer.from("{SSHA}abcdef"),
    },
    {
      dn: `uid=csd4713,ou=people,${base}`,
      uid: "csd4713",
      mail: "csd4713@cs.example.org",
      mailUserStatus: "Inactive",
    },
    { dn: `uid=plain,ou=people,${base}`, uid: "plain", userPassword: "cleartext" },
    { dn: `uid=noid,ou=people,${base}`, mail: "noid@cs.example.org" },
    { dn: `uid=badquota,ou=people,${base}`, uid: "badquota", mailQuota: "lots" },
  ];
  const groups = [
    {
      dn: `cn=csall,ou=groups,${base}`,
      cn: "csall",
      mail: "csall@cs.example.org",
      mailAlternateAddress: "everyone@cs.example.org",
      member: [
        `cn=csstaff, ou=groups,${base}`,
        `uid=gpapadop,ou=people,${base}`,
        `uid=gone,ou=people,${base}`,
      ],
      mailAllowedBroadcaster: [`CN=csstaff,ou=groups,${base}`],
    },
    {
      dn: `cn=csstaff,ou=groups,${base}`,
      cn: "csstaff",
      mail: "csstaff@cs.example.org",
      memberUid: ["JSmith"],
    },
  ];
  const converted = convertEntries(users, groups, defaultMapping(base), domains);

  it("maps users with addresses normalised and the primary not repeated", () => {
    const g = converted.users.find((u) => u.login === "gpapadop");
    expect(g).toEqual({
      login: "gpapadop",
      source: `uid=gpapadop,ou=people,${base}`,
      primaryAddress: "gpapadop@cs.example.org",
      alternateAddresses: ["papadopoulos.georgios@cs.example.org"],
      forwardingAddresses: [],
      quotaBytes: 5368709120,
      status: "active",
      category: "faculty",
      home: "/home/gpapadop",
      uidNumber: 5001,
      gidNumber: 2001,
      passwordHash: "{SSHA}abcdef",
    });
  });

  it.each([
    { login: "csd4713", field: "status", want: "inactive" },
    { login: "plain", field: "primaryAddress", want: "plain@cs.example.org" },
    { login: "plain", field: "passwordHash", want: undefined },
    { login: "plain", field: "quotaBytes", want: null },
  ])("$login.$field = $want", ({ login, field, want }) => {
    const user = converted.users.find((u) => u.login === login) as unknown as Record<string, unknown>;
    expect(user[field]).toEqual(want);
  });

  it("maps nested groups, member DNs and posting rights", () => {
    const csall = converted.groups.find((g) => g.name === "csall");
    expect(csall).toMatchObject({
      addresses: ["csall@cs.example.org", "everyone@cs.example.org"],
      memberLogins: ["gpapadop"],
      memberGroups: ["csstaff"],
      posting: { logins: [], groups: ["csstaff"] },
    });
    expect(converted.groups.find((g) => g.name === "csstaff")?.memberLogins).toEqual(["jsmith"]);
  });

  it("skips entries missing required attributes and reports dangling members", () => {
    expect(converted.problems).toEqual([
      { dn: `uid=noid,ou=people,${base}`, message: "missing required attribute uid", skipped: true },
      {
        dn: `uid=badquota,ou=people,${base}`,
        message: 'mailQuota "lots" is not a number of bytes',
        skipped: true,
      },
      {
        dn: `cn=csall,ou=groups,${base}`,
        message: `member uid=gone,ou=people,${base} does not exist`,
        skipped: false,
      },
    ]);
  });
});

describe("Active-Directory-style mapping, by configuration only", () => {
  const ad: LdapMapping = {
    users: {
      ...defaultMapping("dc=ad,dc=example").users,
      base: "cn=Users,dc=ad,dc=example",
      filter: "(&(objectClass=user)(mail=*))",
      login: "sAMAccountName",
      alternateAddresses: ["proxyAddresses"],
      quota: "mDBStorageQuota",
      quotaUnit: 1024,
      status: "userAccountControl",
      inactiveBitmask: 2,
      memberOf: "memberOf",
      passwordHash: "",
    },
    groups: {
      ...defaultMapping("dc=ad,dc=example").groups,
      base: "cn=Users,dc=ad,dc=example",
      filter: "(objectClass=group)",
      name: "sAMAccountName",
      addresses: ["mail"],
      memberLogins: "",
      memberDns: "",
      allowedPosters: "",
      status: "",
    },
  };
  const converted = convertEntries(
    [
      {
        dn: "CN=Ann Lee,CN=Users,DC=ad,DC=example",
        sAMAccountName: "ALee",
        mail: "alee@cs.example.org",
        mDBStorageQuota: "2048",
        userAccountControl: "512",
        memberOf: ["CN=Staff,CN=Users,DC=ad,DC=example"],
      },
      {
        dn: "CN=Old,CN=Users,DC=ad,DC=example",
        sAMAccountName: "old",
        mail: "old@cs.example.org",
        userAccountControl: "514",
        memberOf: "CN=Staff,CN=Users,DC=ad,DC=example",
      },
    ],
    [{ dn: "CN=Staff,CN=Users,DC=ad,DC=example", sAMAccountName: "Staff", mail: "staff@cs.example.org" }],
    ad,
    domains,
  );

  it("reads logins, quota units, disabled bits and memberOf", () => {
    expect(converted.users.map((u) => [u.login, u.quotaBytes, u.status])).toEqual([
      ["alee", 2048 * 1024, "active"],
      ["old", null, "inactive"],
    ]);
    expect(converted.groups).toEqual([
      expect.objectContaining({
        name: "staff",
        addresses: ["staff@cs.example.org"],
        memberLogins: ["alee", "old"],
      }),
    ]);
    expect(converted.problems).toEqual([]);
  });

  it("requests only the mapped attributes", () => {
    expect(requestedAttributes(ad).users).toContain("sAMAccountName");
    expect(requestedAttributes(ad).users).not.toContain("");
    expect(requestedAttributes(ad).groups).toEqual(["sAMAccountName", "mail"]);
  });
});

it("normalises DNs for comparison", () => {
  expect(normaliseDn("CN=Staff, OU=Groups ,DC=x")).toBe("cn=staff,ou=groups,dc=x");
});

describe("mappingFromConfig", () => {
  it("gives the default mapping for the default configuration", () => {
    const result = parseConfigText(
      '[ldap]\nurls = ["ldap://127.0.0.1"]\nbase_dn = "dc=cs,dc=example,dc=org"\n',
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(mappingFromConfig(result.config.ldap)).toEqual(defaultMapping("dc=cs,dc=example,dc=org"));
  });

  it("expresses an Active-Directory-style directory without code", () => {
    const result = parseConfigText(
      [
        "[ldap]",
        'base_dn = "dc=ad,dc=example,dc=org"',
        "[ldap.users]",
        'base = "cn=Users,dc=ad,dc=example,dc=org"',
        'login = "sAMAccountName"',
        'quota = "extensionAttribute5"',
        "quota_unit = 1048576",
        'status = "userAccountControl"',
        "inactive_bitmask = 2",
        'member_of = "memberOf"',
      ].join("\n"),
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const mapping = mappingFromConfig(result.config.ldap);
    expect(mapping.users).toMatchObject({
      base: "cn=Users,dc=ad,dc=example,dc=org",
      login: "sAMAccountName",
      quota: "extensionAttribute5",
      quotaUnit: 1048576,
      inactiveBitmask: 2,
      memberOf: "memberOf",
    });
    expect(mapping.groups.base).toBe("ou=groups,dc=ad,dc=example,dc=org");
  });
});
