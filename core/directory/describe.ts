/**
 * One-line, human-readable descriptions of resolver answers, for admin
 * commands (`emailng demo`, later `quota explain` and `policy explain`) and
 * reports. Never used on the wire.
 */
import type { Claim, Resolution } from "./resolver.js";

function claimName(claim: Claim): string {
  return claim.kind === "user" ? `user ${claim.user.login}` : `group ${claim.group.name}`;
}

export function describeResolution(resolution: Resolution): string {
  switch (resolution.kind) {
    case "invalid":
      return "not an address";
    case "not_ours":
      return "not one of our domains";
    case "unknown":
      return "unknown in our domains";
    case "inactive":
      return `inactive (${claimName(resolution.claim)})`;
    case "ambiguous":
      return `ambiguous: claimed by ${resolution.claims.map(claimName).join(" and ")}`;
    case "mailbox":
      return `mailbox of ${resolution.user.login} (${resolution.user.primaryAddress})`;
    case "forward":
      return `forwarded to ${resolution.targets.join(", ")}${resolution.keepCopy ? " (copy kept)" : ""}`;
    case "group": {
      const { users, externalAddresses, limitExceeded } = resolution.expansion;
      const members = [...users.map((user) => user.login), ...externalAddresses];
      const limit = limitExceeded === null ? "" : ` (stopped: ${limitExceeded} limit)`;
      return `group ${resolution.group.name}: ${members.length} members ${members.join(", ")}${limit}`;
    }
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}
