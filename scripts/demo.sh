#!/usr/bin/env bash
# demo.sh: a group conversation on one machine.
#
# Builds qpnode, qpd and qpctl into a temporary folder, starts a node on a
# free loopback port and one qpd per person (Alice, Bob, Carol), each with
# its own state folder and socket, and lets them talk in an end-to-end
# encrypted MLS group using only qpctl. It prints what each person sees,
# cleans up on exit, and exits non-zero if anything fails.
#
# Needs only Go: bash scripts/demo.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/qpq-demo.XXXXXX")"
pids=()

cleanup() {
	local status=$?
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$status" -ne 0 ]; then
		echo "demo failed (exit $status); last log lines:" >&2
		for f in "$work"/*.log; do
			[ -f "$f" ] || continue
			echo "--- $(basename "$f")" >&2
			tail -n 20 "$f" >&2
		done
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "demo: $*" >&2
	exit 1
}

say() { printf '\n== %s\n' "$*"; }

say "building qpnode, qpd and qpctl"
(cd "$root" && go build -o "$work/bin/" ./node/cmd/qpnode ./daemon/cmd/qpd ./ctl/cmd/qpctl)
bin="$work/bin"

say "starting a node on a free loopback port"
"$bin/qpnode" --listen 127.0.0.1:0 --data-dir "$work/node" --ready-file "$work/node.addr" --log-level warn \
	>"$work/qpnode.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
	[ -s "$work/node.addr" ] && break
	sleep 0.05
done
[ -s "$work/node.addr" ] || fail "qpnode did not start"
node="$(cat "$work/node.addr")"
echo "node listening on $node"

# qp PERSON ARGS...: run qpctl as PERSON.
qp() {
	local who=$1
	shift
	"$bin/qpctl" --socket "$work/$who/s" "$@"
}

people=(alice bob carol)
# key PERSON: the person's identity key, as register printed it.
key() { cat "$work/$1/key"; }
# The three know each other only by the keys exchanged below, so each
# takes every invitation (qpd's default takes only contacts').
for who in "${people[@]}"; do
	mkdir -p "$work/$who"
	"$bin/qpd" --state-dir "$work/$who" --socket "$work/$who/s" --server "$node" --log-level info \
		--invitations anyone >"$work/$who.log" 2>&1 &
	pids+=($!)
done
for who in "${people[@]}"; do
	for _ in $(seq 1 200); do
		qp "$who" status >/dev/null 2>&1 && break
		sleep 0.05
	done
	qp "$who" status >/dev/null || fail "qpd of $who did not start"
done

say "each person registers (an Ed25519 identity; KeyPackages go to the node)"
for who in "${people[@]}"; do
	qp "$who" register >"$work/$who/key"
	echo "$who is $(key "$who")"
done
for who in "${people[@]}"; do
	ok=""
	for _ in $(seq 1 200); do
		if qp "$who" status | grep -Eq 'key packages: +[1-9][0-9]* at the node'; then
			ok=1
			break
		fi
		sleep 0.05
	done
	[ -n "$ok" ] || fail "$who has no KeyPackages at the node"
done

say "alice creates the group \"friends\" and invites bob and carol"
qp alice create-group --name friends
qp alice invite --group friends --peer-key "$(key bob)" --peer-key "$(key carol)"

for who in bob carol; do
	say "$who joins"
	out="$(qp "$who" join --wait 30s)"
	echo "$out"
	grep -q friends <<<"$out" || fail "$who did not join friends"
done

say "they talk"
qp alice send --group friends --msg "Hello both, welcome to friends!"
qp bob send --group friends --msg "Hi Alice! Bob here."
qp carol send --group friends --msg "Carol here, hello!"

# seen PERSON N: print what PERSON sees once N messages from others arrived.
seen() {
	local who=$1 want=$2 got="" n=0
	for _ in $(seq 1 30); do
		got+="$(qp "$who" recv --group friends --wait 2s)"$'\n'
		n=$(grep -c '^\[' <<<"$got" || true)
		[ "$n" -ge "$want" ] && break
	done
	say "what $who sees"
	printf '%s' "$got" | grep '^\['
	[ "$n" -eq "$want" ] || fail "$who saw $n messages, want $want"
}
seen alice 2
seen bob 2
seen carol 2

say "alice removes carol; alice and bob go on"
qp alice remove --group friends --peer-key "$(key carol)"
qp bob send --group friends --msg "Just us two now."
seen alice 1

say "members as alice and bob see them (same epoch, same authenticator)"
qp alice members --group friends
qp bob members --group friends
a="$(qp alice members --group friends | tail -n 1)"
b="$(qp bob members --group friends | tail -n 1)"
[ "$a" = "$b" ] || fail "alice ($a) and bob ($b) disagree on the group state"

say "demo finished: the conversation went end to end through the node"
