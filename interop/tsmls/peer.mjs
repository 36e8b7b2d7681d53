// peer.mjs: one ts-mls group member driven over stdin/stdout.
//
// Protocol: one JSON object per line in, one JSON object per line out, in
// order. Every request is {"id": <any>, "cmd": "<name>", ...arguments}; every
// answer is {"id": <same>, "ok": true, ...results} or {"id": <same>, "ok":
// false, "error": "<text>"}. Binary values are lowercase hex. MLS values are
// serialized MLSMessage bytes unless noted; "ratchet_tree" is the body of the
// ratchet_tree extension.
//
// The peer holds at most one group and one pending KeyPackage. Commands:
//   hello                                    -> {name, suite}
//   key_package {identity, native?}          -> {key_package}
//   create_group {group_id, identity}        -> {epoch, epoch_authenticator}
//   add {key_package, public?, tree_in_welcome?}
//                                            -> {commit, welcome, ratchet_tree, epoch, epoch_authenticator}
//   remove {identity, public?}               -> {commit, epoch, epoch_authenticator}
//   store_psk {psk_id, secret}                 -> {} (an external PSK)
//   propose {type: "add", key_package | type: "remove", identity | type: "psk", psk_id; public?}
//                                            -> {proposal} (kept for this peer's next commit)
//   commit_update {public?}                  -> {commit, welcome?, epoch, epoch_authenticator}
//                                               (commits every proposal received or sent in the epoch, with a path)
//   join {welcome, ratchet_tree?}            -> {epoch, epoch_authenticator, members}
//   group_info {native?}                     -> {group_info} (with external_pub and ratchet_tree extensions)
//   external_join {group_info, identity}     -> {commit, epoch, epoch_authenticator}
//   protect {plaintext, authenticated_data?} -> {ciphertext}
//   process {message}                        -> {kind: "application"|"commit"|"proposal", plaintext?, epoch, epoch_authenticator}
//   state                                    -> {epoch, epoch_authenticator, members}
//   export {label, context, length}          -> {secret}
//
// external_pub: RFC 9420 §12.4.3.2 defines the extension's data as the
// struct ExternalPub { HPKEPublicKey external_pub; }, that is the key with
// its variable-length header. ts-mls 1.6.4 writes and reads the bare key
// instead. group_info therefore builds the GroupInfo itself with the RFC
// form (signed by ts-mls as usual); "native": true gives ts-mls's own form.
// external_join passes the GroupInfo to ts-mls unchanged, so it only
// understands ts-mls's own form.
//
// ts-mls is loaded from the folder named by QPQ_TSMLS_DIR (or the working
// folder), which must hold node_modules with ts-mls and @noble/curves.

import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const baseDir = process.env.QPQ_TSMLS_DIR || process.cwd();
const requireFrom = createRequire(path.join(path.resolve(baseDir), "package.json"));
const load = async (spec) => import(pathToFileURL(requireFrom.resolve(spec)).href);

const mls = await load("ts-mls");
const treeCodec = await load("ts-mls/ratchetTree.js");
const commitLib = await load("ts-mls/createCommit.js");

const suiteId = Number(process.env.QPQ_TSMLS_SUITE || "1");
const suiteName = Object.keys(mls.ciphersuites).find((n) => mls.ciphersuites[n] === suiteId);
if (!suiteName) {
  throw new Error(`unknown cipher suite ${suiteId}`);
}
const impl = await mls.getCiphersuiteImpl(mls.getCiphersuiteFromName(suiteName));

// NIST-curve signature keys: RFC 9420 §5.1.1 wants the public key as an
// UncompressedPointRepresentation; ts-mls 1.6.4 with @noble/curves 2 makes
// compressed ones. Unless asked for ts-mls's own ("native") form, the peer
// makes the key pair itself, with the uncompressed public key.
const nistCurve = { 2: "p256", 5: "p521", 7: "p384" }[suiteId];
const nist = nistCurve ? (await load("@noble/curves/nist.js"))[nistCurve] : undefined;

async function makeKeyPackage(identity, native) {
  const cred = credential(identity);
  if (!nist || native) {
    return mls.generateKeyPackage(cred, mls.defaultCapabilities(), mls.defaultLifetime, [], impl);
  }
  const signKey = nist.utils.randomSecretKey();
  const publicKey = nist.getPublicKey(signKey, false);
  return mls.generateKeyPackageWithKey(cred, mls.defaultCapabilities(), mls.defaultLifetime, [], { signKey, publicKey }, impl);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function toHex(b) {
  return Buffer.from(b).toString("hex");
}

function fromHex(name, s) {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new Error(`${name}: want an even-length hex string`);
  }
  return new Uint8Array(Buffer.from(s, "hex"));
}

function decodeMessage(name, hex, want) {
  const bytes = fromHex(name, hex);
  const res = mls.decodeMlsMessage(bytes, 0);
  if (!res) {
    throw new Error(`${name}: not a valid MLSMessage`);
  }
  const [msg, used] = res;
  if (used !== bytes.length) {
    throw new Error(`${name}: ${bytes.length - used} trailing bytes after MLSMessage`);
  }
  if (want && !want.includes(msg.wireformat)) {
    throw new Error(`${name}: wire format ${msg.wireformat}, want ${want.join(" or ")}`);
  }
  return msg;
}

function encodeMessage(content) {
  return toHex(mls.encodeMlsMessage({ version: "mls10", ...content }));
}

// withLengthHeader prefixes b with its RFC 9420 §2.1.2 variable-length
// header (opaque<V>).
function withLengthHeader(b) {
  const n = b.length;
  let head;
  if (n < 1 << 6) {
    head = [n];
  } else if (n < 1 << 14) {
    head = [0x40 | (n >> 8), n & 0xff];
  } else {
    head = [0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  }
  const out = new Uint8Array(head.length + n);
  out.set(head, 0);
  out.set(b, head.length);
  return out;
}

function credential(identity) {
  if (typeof identity !== "string" || identity.length === 0) {
    throw new Error("identity: want a non-empty string");
  }
  return { credentialType: "basic", identity: enc.encode(identity) };
}

let state; // ClientState of our one group
const externalPsks = {}; // external PSKs by base64 of their id, as makePskIndex wants them
const pskIndex = () => mls.makePskIndex(state, externalPsks);
let pending; // {publicPackage, privatePackage} waiting for a Welcome

function needGroup() {
  if (!state) {
    throw new Error("no group: create_group, join or external_join first");
  }
  return state;
}

function members(st) {
  const out = [];
  st.ratchetTree.forEach((node, i) => {
    if (i % 2 === 0 && node && node.nodeType === "leaf") {
      const c = node.leaf.credential;
      out.push({ leaf: i / 2, identity: c.credentialType === "basic" ? dec.decode(c.identity) : "" });
    }
  });
  return out;
}

function summary(st) {
  return {
    epoch: Number(st.groupContext.epoch),
    epoch_authenticator: toHex(st.keySchedule.epochAuthenticator),
  };
}

async function commit(req, proposals, extra = {}) {
  const res = await mls.createCommit(
    { state: needGroup(), cipherSuite: impl, pskIndex: pskIndex() },
    { extraProposals: proposals, wireAsPublicMessage: !!req.public, ...extra },
  );
  state = res.newState;
  res.consumed.forEach(mls.zeroOutUint8Array);
  return res;
}

const handlers = {
  async hello() {
    return { name: "ts-mls", suite: suiteId };
  },

  async key_package(req) {
    pending = await makeKeyPackage(req.identity, !!req.native);
    return { key_package: encodeMessage({ wireformat: "mls_key_package", keyPackage: pending.publicPackage }) };
  },

  async create_group(req) {
    const kp = await makeKeyPackage(req.identity, false);
    state = await mls.createGroup(fromHex("group_id", req.group_id), kp.publicPackage, kp.privatePackage, [], impl);
    return summary(state);
  },

  async add(req) {
    const kp = decodeMessage("key_package", req.key_package, ["mls_key_package"]);
    const res = await commit(req, [{ proposalType: "add", add: { keyPackage: kp.keyPackage } }], {
      ratchetTreeExtension: req.tree_in_welcome !== false,
    });
    if (!res.welcome) {
      throw new Error("commit with an Add gave no Welcome");
    }
    return {
      commit: toHex(mls.encodeMlsMessage(res.commit)),
      welcome: encodeMessage({ wireformat: "mls_welcome", welcome: res.welcome }),
      ratchet_tree: toHex(treeCodec.encodeRatchetTree(state.ratchetTree)),
      ...summary(state),
    };
  },

  async remove(req) {
    const victim = members(needGroup()).find((m) => m.identity === req.identity);
    if (!victim) {
      throw new Error(`remove: no member with identity ${JSON.stringify(req.identity)}`);
    }
    const res = await commit(req, [{ proposalType: "remove", remove: { removed: victim.leaf } }]);
    return { commit: toHex(mls.encodeMlsMessage(res.commit)), ...summary(state) };
  },

  async propose(req) {
    let proposal;
    if (req.type === "add") {
      const kp = decodeMessage("key_package", req.key_package, ["mls_key_package"]);
      proposal = { proposalType: "add", add: { keyPackage: kp.keyPackage } };
    } else if (req.type === "remove") {
      const victim = members(needGroup()).find((m) => m.identity === req.identity);
      if (!victim) {
        throw new Error(`propose remove: no member with identity ${JSON.stringify(req.identity)}`);
      }
      proposal = { proposalType: "remove", remove: { removed: victim.leaf } };
    } else if (req.type === "psk") {
      const pskNonce = new Uint8Array(impl.kdf.size);
      crypto.getRandomValues(pskNonce);
      const preSharedKeyId = { psktype: "external", pskId: fromHex("psk_id", req.psk_id), pskNonce };
      proposal = { proposalType: "psk", psk: { preSharedKeyId } };
    } else {
      throw new Error(`propose: unsupported type ${JSON.stringify(req.type)}`);
    }
    const res = await mls.createProposal(needGroup(), !!req.public, proposal, impl);
    state = res.newState;
    res.consumed.forEach(mls.zeroOutUint8Array);
    return { proposal: toHex(mls.encodeMlsMessage(res.message)) };
  },

  async store_psk(req) {
    externalPsks[mls.bytesToBase64(fromHex("psk_id", req.psk_id))] = fromHex("secret", req.secret);
    return {};
  },

  async commit_update(req) {
    const res = await commit(req, [], { ratchetTreeExtension: true });
    const out = { commit: toHex(mls.encodeMlsMessage(res.commit)), ...summary(state) };
    if (res.welcome) {
      out.welcome = encodeMessage({ wireformat: "mls_welcome", welcome: res.welcome });
    }
    return out;
  },

  async join(req) {
    if (!pending) {
      throw new Error("join: no pending KeyPackage (key_package first)");
    }
    const w = decodeMessage("welcome", req.welcome, ["mls_welcome"]);
    let tree;
    if (req.ratchet_tree) {
      const bytes = fromHex("ratchet_tree", req.ratchet_tree);
      const res = treeCodec.decodeRatchetTree(bytes, 0);
      if (!res || res[1] !== bytes.length) {
        throw new Error("ratchet_tree: not a valid ratchet tree");
      }
      tree = res[0];
    }
    state = await mls.joinGroup(w.welcome, pending.publicPackage, pending.privatePackage, pskIndex(), impl, tree);
    pending = undefined;
    return { ...summary(state), members: members(state) };
  },

  async group_info(req) {
    const st = needGroup();
    let gi;
    if (req.native) {
      gi = await mls.createGroupInfoWithExternalPubAndRatchetTree(st, [], impl);
    } else {
      const kp = await impl.hpke.deriveKeyPair(st.keySchedule.externalSecret);
      const pub = await impl.hpke.exportPublicKey(kp.publicKey);
      gi = await commitLib.createGroupInfo(st.groupContext, st.confirmationTag, st, [
        { extensionType: "external_pub", extensionData: withLengthHeader(pub) },
        { extensionType: "ratchet_tree", extensionData: treeCodec.encodeRatchetTree(st.ratchetTree) },
      ], impl);
    }
    return { group_info: encodeMessage({ wireformat: "mls_group_info", groupInfo: gi }) };
  },

  async external_join(req) {
    const gi = decodeMessage("group_info", req.group_info, ["mls_group_info"]);
    const kp = await makeKeyPackage(req.identity, false);
    const res = await mls.joinGroupExternal(gi.groupInfo, kp.publicPackage, kp.privatePackage, false, impl);
    state = res.newState;
    return {
      commit: encodeMessage({ wireformat: "mls_public_message", publicMessage: res.publicMessage }),
      ...summary(state),
    };
  },

  async protect(req) {
    const aad = req.authenticated_data ? fromHex("authenticated_data", req.authenticated_data) : new Uint8Array();
    const res = await mls.createApplicationMessage(needGroup(), fromHex("plaintext", req.plaintext), impl, aad);
    state = res.newState;
    res.consumed.forEach(mls.zeroOutUint8Array);
    return { ciphertext: encodeMessage({ wireformat: "mls_private_message", privateMessage: res.privateMessage }) };
  },

  async process(req) {
    const msg = decodeMessage("message", req.message, ["mls_private_message", "mls_public_message"]);
    const before = needGroup().groupContext.epoch;
    // processMessage of ts-mls 1.6.4 drops the PSK index for PrivateMessages,
    // so the two kinds are processed directly.
    const res =
      msg.wireformat === "mls_private_message"
        ? await mls.processPrivateMessage(state, msg.privateMessage, pskIndex(), impl, mls.acceptAll)
        : { kind: "newState", ...(await mls.processPublicMessage(state, msg.publicMessage, pskIndex(), impl, mls.acceptAll)) };
    state = res.newState;
    res.consumed.forEach(mls.zeroOutUint8Array);
    if (res.kind === "applicationMessage") {
      return { kind: "application", plaintext: toHex(res.message), ...summary(state) };
    }
    if (res.actionTaken !== "accept") {
      throw new Error(`message was ${res.actionTaken}ed`);
    }
    const kind = state.groupContext.epoch !== before ? "commit" : "proposal";
    return { kind, ...summary(state), members: members(state) };
  },

  async state() {
    return { ...summary(needGroup()), members: members(state) };
  },

  async export(req) {
    const secret = await mls.mlsExporter(
      needGroup().keySchedule.exporterSecret,
      String(req.label ?? ""),
      fromHex("context", req.context ?? ""),
      Number(req.length),
      impl,
    );
    return { secret: toHex(secret) };
  },
};

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let queue = Promise.resolve();

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

rl.on("line", (line) => {
  if (line.trim() === "") {
    return;
  }
  queue = queue.then(async () => {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      reply({ id: null, ok: false, error: `bad request line: ${e.message}` });
      return;
    }
    const h = Object.hasOwn(handlers, req.cmd) ? handlers[req.cmd] : undefined;
    if (!h) {
      reply({ id: req.id ?? null, ok: false, error: `unknown command ${JSON.stringify(req.cmd)}` });
      return;
    }
    try {
      reply({ id: req.id ?? null, ok: true, ...(await h(req)) });
    } catch (e) {
      reply({ id: req.id ?? null, ok: false, error: String(e && e.message ? e.message : e) });
    }
  });
});

rl.on("close", () => {
  queue.then(() => process.exit(0));
});
