/**
 * The three protocols emailng serves, each tied to the socket server: which
 * decoder a connection gets, the one function that encodes replies, and the
 * fail-safe reply for a request whose handling failed. The fail-safes are
 * always temporary (socketmap TEMP, policy DEFER_IF_PERMIT, dict failure), so
 * no bug or slow backend can turn into "user unknown" or a permanent reject.
 */
import {
  type DictClientFrame,
  DictCommandDecoder,
  type DictServerReply,
  dictFailSafeReply,
  encodeDictServerReply,
} from "../protocols/dovecot-dict.js";
import { NetstringDecoder } from "../protocols/netstring.js";
import { type PolicyDecoderLimits, type PolicyRequest, PolicyRequestDecoder } from "../protocols/policy.js";
import { encodePolicyReply, POLICY_FAILSAFE_ACTION, type PolicyAction } from "../protocols/policy-reply.js";
import { encodeSocketmapReplySafe, type SocketmapReply } from "../protocols/socketmap.js";
import type { ProtocolDefinition } from "./protocol.js";

// Most socketmap answers are one of two constant replies (a deliverable
// recipient, an unknown key): encoded once instead of on every lookup.
const NOTFOUND_BYTES = encodeSocketmapReplySafe({ status: "NOTFOUND" });
const OK_DUNNO_BYTES = encodeSocketmapReplySafe({ status: "OK", data: "DUNNO" });

function encodeSocketmapReplyCached(reply: SocketmapReply): Uint8Array {
  if (reply.status === "NOTFOUND") return NOTFOUND_BYTES;
  if (reply.status === "OK" && reply.data === "DUNNO") return OK_DUNNO_BYTES;
  return encodeSocketmapReplySafe(reply);
}

/** Socketmap frames are raw netstring payloads; sessions parse `name key` so a bad query gets PERM. */
export function socketmapProtocol(maxQueryBytes = 10_000): ProtocolDefinition<Uint8Array, SocketmapReply> {
  return {
    name: "socketmap",
    createDecoder: () => new NetstringDecoder(maxQueryBytes),
    encodeReply: encodeSocketmapReplyCached,
    failSafeReply: () => ({ status: "TEMP", reason: "internal error" }),
    outcomeLabel: (reply) => reply.status,
  };
}

export function policyProtocol(
  limits?: Partial<PolicyDecoderLimits>,
): ProtocolDefinition<PolicyRequest, PolicyAction> {
  return {
    name: "policy",
    createDecoder: () => new PolicyRequestDecoder(limits),
    encodeReply: encodePolicyReply,
    failSafeReply: () => POLICY_FAILSAFE_ACTION,
    outcomeLabel: (action) => action.action,
  };
}

export function dictProtocol(maxLineBytes?: number): ProtocolDefinition<DictClientFrame, DictServerReply> {
  return {
    name: "dict",
    createDecoder: () => new DictCommandDecoder(maxLineBytes),
    encodeReply: encodeDictServerReply,
    failSafeReply: dictFailSafeReply,
    outcomeLabel: (reply) => {
      switch (reply.kind) {
        case "lookup":
          return `lookup_${reply.result.kind}`;
        case "iterate":
          return reply.end.ok ? "iterate" : "iterate_failed";
        case "commit":
          return `commit_${reply.result.kind}`;
        default: {
          const unreachable: never = reply;
          return unreachable;
        }
      }
    },
  };
}
