// selfcheck.mjs: runs two peer.mjs processes against each other (ts-mls with
// ts-mls) to show the peer protocol works before testing another stack.
// Usage: QPQ_TSMLS_DIR=<folder with node_modules> node selfcheck.mjs
import { spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function startPeer(name) {
  const child = spawn(process.execPath, [path.join(here, "peer.mjs")], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on("line", (l) => waiting.shift()(JSON.parse(l)));
  let n = 0;
  return {
    child,
    async call(cmd, args = {}) {
      const id = ++n;
      const answer = new Promise((resolve) => waiting.push(resolve));
      child.stdin.write(JSON.stringify({ id, cmd, ...args }) + "\n");
      const res = await answer;
      if (res.id !== id) throw new Error(`${name}: answer id ${res.id}, want ${id}`);
      if (!res.ok) throw new Error(`${name} ${cmd}: ${res.error}`);
      return res;
    },
  };
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const hex = (s) => Buffer.from(s, "utf8").toString("hex");
const a = startPeer("alice");
const b = startPeer("bob");
try {
  await a.call("create_group", { group_id: hex("selfcheck"), identity: "alice" });
  const kp = await b.call("key_package", { identity: "bob" });
  const add = await a.call("add", { key_package: kp.key_package });
  const joined = await b.call("join", { welcome: add.welcome });
  check(joined.epoch_authenticator === add.epoch_authenticator, "join agrees on epoch authenticator");
  check(joined.members.length === 2, "two members after join");

  const m1 = await a.call("protect", { plaintext: hex("hello bob") });
  const r1 = await b.call("process", { message: m1.ciphertext });
  check(r1.kind === "application" && r1.plaintext === hex("hello bob"), "bob reads alice");
  const m2 = await b.call("protect", { plaintext: hex("hello alice") });
  const r2 = await a.call("process", { message: m2.ciphertext });
  check(r2.plaintext === hex("hello alice"), "alice reads bob");

  const c1 = await b.call("commit_update", {});
  const p1 = await a.call("process", { message: c1.commit });
  check(p1.kind === "commit" && p1.epoch_authenticator === c1.epoch_authenticator, "alice follows bob's commit");
  const c2 = await a.call("commit_update", { public: true });
  const p2 = await b.call("process", { message: c2.commit });
  check(p2.epoch === 3 && p2.epoch_authenticator === c2.epoch_authenticator, "bob follows alice's public commit");

  const c = startPeer("charlie");
  try {
    const gi = await a.call("group_info", { native: true });
    const ej = await c.call("external_join", { group_info: gi.group_info, identity: "charlie" });
    for (const p of [a, b]) {
      const r = await p.call("process", { message: ej.commit });
      check(r.epoch_authenticator === ej.epoch_authenticator && r.members.length === 3, "external join followed");
    }
    const rm = await b.call("remove", { identity: "charlie" });
    const r = await a.call("process", { message: rm.commit });
    check(r.epoch_authenticator === rm.epoch_authenticator && r.members.length === 2, "remove followed");
  } finally {
    c.child.stdin.end();
  }

  // An external PSK proposed by one and committed by the other.
  for (const p of [a, b]) await p.call("store_psk", { psk_id: hex("psk"), secret: hex("0123456789abcdef0123456789abcdef") });
  const pp = await a.call("propose", { type: "psk", psk_id: hex("psk") });
  await b.call("process", { message: pp.proposal });
  const pc = await b.call("commit_update", {});
  const pr = await a.call("process", { message: pc.commit });
  check(pr.epoch_authenticator === pc.epoch_authenticator, "PSK commit followed");

  const bad = await a.call("process", { message: "00" }).catch((e) => e);
  check(bad instanceof Error, "garbage is refused");
  console.log("selfcheck: ts-mls peer against ts-mls peer: ok (epoch 6)");
} finally {
  a.child.stdin.end();
  b.child.stdin.end();
}
