#!/bin/bash
# Signed update repositories with vigilctl (docs/updates.md): keys, a
# root, a rule set published, the repository exported as one file and
# imported into a fresh directory, verified there. Then each attack from
# the command line, each refused with its own message and nothing written:
# an expired timestamp (freeze), a rolled-back version, a tampered
# artifact, a forged signature, too few signatures for a threshold, a
# compromised timestamp key rotated out through a new root, traversal
# names in an export file, links in a repository; roots in an export
# that would replace a trusted root; an export cut short.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
U() { "$CTL" update "$@"; }
cd "$T" || fail "cd $T"

# expect_refused WORDS CMD...: CMD fails and says WORDS.
expect_refused() {
	local words=$1
	shift
	if "$@" >"$T/out" 2>&1; then
		fail "accepted: $*: $(cat "$T/out")"
	fi
	expect_contains "$(cat "$T/out")" "$words"
}

# 1. Keys: one per role, private ones 0600; root kept apart.
U keygen --dir keys >"$T/out" 2>&1 || fail "keygen: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "move root*.key to an offline medium"
for r in root targets snapshot timestamp; do
	[ "$(stat -c %a keys/$r.key)" = 600 ] || fail "$r.key mode $(stat -c %a keys/$r.key)"
	[ -s keys/$r.pub ] || fail "no $r.pub"
done
expect_refused "already exists" U keygen --dir keys --role root
expect_refused "--role 'bogus': root, targets, snapshot or timestamp" \
	U keygen --dir keys --role bogus
U keygen --dir keys --role targets --name 2 >/dev/null || fail "second targets key"
mkdir online
cp keys/targets.key keys/targets-2.key keys/snapshot.key keys/timestamp.key online/

# 2. A root: two targets keys, threshold 2. Publish a rule set.
U root --repo repo --root-key keys/root.key --targets-key keys/targets.pub \
	--targets-key keys/targets-2.pub --threshold targets=2 \
	--snapshot-key keys/snapshot.pub --timestamp-key keys/timestamp.pub \
	>"$T/out" 2>&1 || fail "root: $(cat "$T/out")"
[ "$(jq -r .signed.roles.targets.threshold repo/1.root.json)" = 2 ] ||
	fail "threshold not in the root"
printf 'rule demo { strings: $a = "evil" condition: $a }\n' >base.yar
U publish --repo repo --keys online --kind rules --name rules/base.yar \
	--version 2026.12.06 base.yar >"$T/out" 2>&1 || fail "publish: $(cat "$T/out")"
[ "$(jq '.signatures | length' repo/targets.json)" = 2 ] ||
	fail "targets not signed by both keys"
U verify --repo repo --root repo/1.root.json >"$T/out" 2>&1 ||
	fail "verify: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "OK: root v1, timestamp v1, snapshot v1, targets v1, 1 artifact verified"
U status --repo repo --json >"$T/st.json" || fail "status"
[ "$(jq -r '.roles[] | select(.role == "timestamp") | .state' "$T/st.json")" = ok ] ||
	fail "status: $(cat "$T/st.json")"
[ "$(jq -r '.targets[0].kind + " " + .targets[0].version' "$T/st.json")" = "rules 2026.12.06" ] ||
	fail "status targets: $(cat "$T/st.json")"
# What is due: the timestamp (24 h) within its last 6 hours.
U status --repo repo --at "$(date -u -d '+20 hours' +%Y-%m-%dT%H:%M:%SZ)" >"$T/out"
expect_contains "$(grep ^timestamp "$T/out")" "due"
cp repo/1.root.json pinned-root.json
pass "keygen, root (threshold 2), publish, verify, status"

# 3. Export, import into a fresh directory, verify there.
U export --repo repo --out v1.export >"$T/out" 2>&1 || fail "export: $(cat "$T/out")"
U export --repo repo --out "$T/abs.export" >"$T/out" 2>&1 ||
	fail "export to an absolute path: $(cat "$T/out")"
cmp -s v1.export "$T/abs.export" || fail "the export to an absolute path differs"
U import --in v1.export --repo site --root pinned-root.json >"$T/out" 2>&1 ||
	fail "import: $(cat "$T/out")"
U verify --repo site --root pinned-root.json >"$T/out" 2>&1 ||
	fail "verify site: $(cat "$T/out")"
cmp site/targets/"$(sha256sum base.yar | cut -c1-64)" base.yar ||
	fail "the rule set differs at the site"
expect_refused "holds no trusted root: give the root this site trusts with --root" \
	U import --in v1.export --repo fresh2
pass "export, import into a fresh directory, verified"

# 4. Freeze: the timestamp expires after a day.
LATER=$(date -u -d '+25 hours' +%Y-%m-%dT%H:%M:%SZ)
expect_refused "timestamp.json refused (expired): timestamp metadata version 1 expired at" \
	U verify --repo site --root pinned-root.json --at "$LATER"
expect_refused "refused; nothing was written" \
	U import --in v1.export --repo site2 --root pinned-root.json --at "$LATER"
[ ! -e site2 ] || fail "a refused import wrote site2"
U status --repo site --at "$LATER" >"$T/out" 2>&1
expect_contains "$(grep ^timestamp "$T/out")" "EXPIRED"
pass "freeze: an expired timestamp refused"

# 5. Rollback: version 2 at the site, then the old export again.
printf 'rule demo2 { condition: false }\n' >base2.yar
# Carried into the site a day and more later, when the site's own
# timestamp has expired: a timestamp of 72 hours is still valid.
U publish --repo repo --keys online --kind rules --name rules/base.yar \
	--version 2026.12.07 --timestamp-hours 72 base2.yar >/dev/null ||
	fail "publish v2"
U export --repo repo --out v2.export >/dev/null || fail "export v2"
U import --in v2.export --repo site --at "$LATER" >"$T/out" 2>&1 ||
	fail "import v2: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "timestamp v2, snapshot v2, targets v2"
expect_refused "timestamp metadata version 1 is older than the trusted version 2 (rollback)" \
	U import --in v1.export --repo site
cmp site/targets/"$(sha256sum base2.yar | cut -c1-64)" base2.yar || fail "v2 lost"
[ "$(jq .signed.version site/timestamp.json)" = 2 ] || fail "rollback written"
pass "rollback: an older export refused, the site keeps version 2"

# 6. Tampered artifact: in the repository, and in an export file.
cp -r repo bad
A=bad/targets/$(sha256sum base2.yar | cut -c1-64)
chmod u+w "$A"
printf 'rule demo2 { condition: true  }\n' >"$A"
expect_refused "artifact rules/base.yar: SHA-256 differs from the signed one" \
	U verify --repo bad --root pinned-root.json
expect_refused "does not verify; nothing exported" U export --repo bad --out bad.export
H=$(sha256sum base2.yar | cut -c1-64)
jq -c --arg h "$H" --arg v "$(printf 'rule evil2 { condition: true  }\n' | base64 -w0)" \
	'.artifacts[$h] = $v' v2.export >tampered.export
expect_refused "refused: artifact rules/base.yar: SHA-256 differs from the signed one" \
	U import --in tampered.export --repo site3 --root pinned-root.json
# Endless data: more bytes than the targets declare.
jq -c --arg h "$H" --arg v "$( (cat base2.yar; head -c 4096 /dev/zero) | base64 -w0)" \
	'.artifacts[$h] = $v' v2.export >endless.export
expect_refused "more than the" \
	U import --in endless.export --repo site3 --root pinned-root.json
[ ! -e site3 ] || fail "a refused import wrote site3"
rm -rf bad
pass "arbitrary and endless artifacts refused"

# 7. A forged signature: the timestamp's signature replaced by another
# valid-looking one (the snapshot's).
jq -c '.metadata["timestamp.json"] |= (fromjson |
	.signatures[0].sig = "'"$(jq -r '.signatures[0].sig' repo/snapshot.json)"'" | tojson)' \
	v2.export >forged.export
expect_refused "timestamp.json refused (bad-signature): timestamp metadata: the signature by key" \
	U import --in forged.export --repo site4 --root pinned-root.json
pass "a forged signature refused"

# 8. Too few signatures for the threshold: one targets key of two.
mkdir online1
cp keys/targets.key keys/snapshot.key keys/timestamp.key online1/
expect_refused "the targets role needs 2 signatures and online1 holds 1 of its keys" \
	U publish --repo repo --keys online1 --kind rules --name rules/x.yar \
	--version 1 base.yar
jq -c '.metadata["targets.json"] |= (fromjson | .signatures |= .[:1] | tojson)' \
	v2.export >onesig.export
expect_refused "targets.json refused (threshold): targets metadata: 1 valid signature of the 2 its threshold requires" \
	U import --in onesig.export --repo site4 --root pinned-root.json
[ ! -e site4 ] || fail "a refused import wrote site4"
pass "too few signatures for a threshold refused"

# 9. A compromised timestamp key, rotated out through root version 2.
cp -r repo attacker
cp -r online attacker-keys
U keygen --dir keys --role timestamp --name 2 >/dev/null || fail "keygen ts2"
# A new root not signed by the current root is refused before writing.
U keygen --dir rogue --role root >/dev/null
expect_refused "by the trusted root's keys: 0 valid signatures of the 1" \
	U root --repo repo --root-key rogue/root.key
U root --repo repo --root-key keys/root.key --timestamp-key keys/timestamp-2.pub \
	>"$T/out" 2>&1 || fail "rotation: $(cat "$T/out")"
rm online/timestamp.key
cp keys/timestamp-2.key online/
U sign --repo repo --keys online >"$T/out" 2>&1 || fail "sign after rotation: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "timestamp v3"
# The targets survive the rotation (the old timestamp no longer verifies,
# which once made sign drop every target).
[ "$(jq '.signed.targets | length' repo/targets.json)" = 1 ] ||
	fail "sign after the rotation dropped the targets: $(jq -c .signed.targets repo/targets.json)"
U export --repo repo --out v3.export >/dev/null || fail "export v3"
U import --in v3.export --repo site >"$T/out" 2>&1 || fail "import v3: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "root v2"
# The attacker, holding the old timestamp key, signs a newer timestamp
# and puts it into an export with the new root.
U sign --repo attacker --keys attacker-keys >/dev/null || fail "attacker sign"
U sign --repo attacker --keys attacker-keys >/dev/null || fail "attacker sign"
jq -c --arg ts "$(cat attacker/timestamp.json)" \
	'.metadata["timestamp.json"] = $ts' v3.export >rotated.export
[ "$(jq -r '.metadata["timestamp.json"] | fromjson | .signed.version' rotated.export)" = 4 ] ||
	fail "the attacker's timestamp is not newer"
expect_refused "timestamp.json refused (threshold): timestamp metadata: 0 valid signatures of the 1" \
	U import --in rotated.export --repo site
# A fresh site pinned to root v1 walks the chain to v2 and takes v3.
U import --in v3.export --repo site5 --root pinned-root.json >"$T/out" 2>&1 ||
	fail "fresh import through the rotation: $(cat "$T/out")"
# Root v2 with v1 missing from the chain: refused.
jq -c 'del(.metadata["2.root.json"])' v3.export >nochain.export
expect_refused "timestamp.json refused (threshold)" \
	U import --in nochain.export --repo site6 --root pinned-root.json
pass "key rotation through root: the old timestamp key no longer counts"

# 10. Traversal and links.
jq -c '.artifacts["../../evil"] = "AAAA"' v3.export >trav.export
expect_refused "artifact name '../../evil' in the export is not a SHA-256" \
	U import --in trav.export --repo site7 --root pinned-root.json
jq -c '.metadata["../root.json"] = "{}"' v3.export >trav2.export
expect_refused "metadata entry '../root.json' in the export" \
	U import --in trav2.export --repo site7 --root pinned-root.json
[ ! -e site7 ] && [ ! -e "$T/../evil" ] || fail "a traversal export wrote something"
expect_refused "--name '../../etc/cron.d/x' is refused" \
	U publish --repo repo --keys online --kind rules --name ../../etc/cron.d/x \
	--version 1 base.yar
expect_refused "--name '/etc/x' is refused" \
	U publish --repo repo --keys online --kind rules --name /etc/x --version 1 base.yar
cp -r site linked
mv linked/timestamp.json linked/ts.real
ln -s ts.real linked/timestamp.json
expect_refused "is not a regular file (links are refused)" \
	U verify --repo linked --root pinned-root.json
pass "traversal names and links refused"

# 11. Roots the chain walk does not verify (at or below the trusted
# version) are never written: an export whose 1.root.json is another
# root (its own root key, the genuine other keys) is refused, on a first
# import pinned on the genuine root and into an existing site, and
# nothing is replaced.
U keygen --dir evil --role root >/dev/null || fail "keygen evil"
U root --repo evilrepo --root-key evil/root.key --targets-key keys/targets.pub \
	--snapshot-key keys/snapshot.pub --timestamp-key keys/timestamp.pub \
	>/dev/null || fail "evil root"
jq -c --rawfile r evilrepo/1.root.json '.metadata["1.root.json"] = $r' \
	v3.export >evilroot.export
expect_refused "1.root.json in the export differs from the pinned root pinned-root.json" \
	U import --in evilroot.export --repo site8 --root pinned-root.json
[ ! -e site8 ] || fail "a refused import wrote site8"
cp site/1.root.json site-1.before
cp site/root.json site-root.before
expect_refused "1.root.json in the export differs from the site/1.root.json this site trusts" \
	U import --in evilroot.export --repo site
cmp -s site/1.root.json site-1.before || fail "site/1.root.json replaced"
cmp -s site/root.json site-root.before || fail "site/root.json replaced"
# Garbage for a trusted root, and a root beyond the verified chain.
jq -c '.metadata["1.root.json"] = "garbage"' v3.export >garbage.export
expect_refused "1.root.json in the export differs" \
	U import --in garbage.export --repo site
jq -c --rawfile r evilrepo/1.root.json '.metadata["7.root.json"] = $r' \
	v3.export >gap.export
expect_refused "7.root.json in the export was not verified (the root chain stops at version 2)" \
	U import --in gap.export --repo site9 --root pinned-root.json
[ ! -e site9 ] || fail "a refused import wrote site9"
U verify --repo site --root pinned-root.json >"$T/out" 2>&1 ||
	fail "site no longer verifies: $(cat "$T/out")"
# The genuine export still goes in, and the site keeps its roots.
U import --in v3.export --repo site >"$T/out" 2>&1 || fail "re-import v3: $(cat "$T/out")"
cmp -s site/1.root.json site-1.before || fail "site/1.root.json rewritten"
# Pinned on root version 2: the export's 1.root.json must lead to it.
expect_refused "roots 1.root.json to 1.root.json do not lead to the pinned root (version 2)" \
	U import --in evilroot.export --repo site11 --root repo/2.root.json
[ ! -e site11 ] || fail "a refused import wrote site11"
U import --in v3.export --repo site11 --root repo/2.root.json >"$T/out" 2>&1 ||
	fail "import pinned on v2: $(cat "$T/out")"
cmp -s site11/1.root.json repo/1.root.json || fail "site11 lacks the genuine 1.root.json"
U import --in v3.export --repo site11 >"$T/out" 2>&1 ||
	fail "second import into site11: $(cat "$T/out")"
pass "an export cannot replace a trusted root"

# 12. An export without timestamp.json names the export, not publish.
jq -c 'del(.metadata["timestamp.json"])' v3.export >nots.export
expect_refused "the export nots.export holds no timestamp.json" \
	U import --in nots.export --repo site10 --root pinned-root.json
[ ! -e site10 ] || fail "a refused import wrote site10"
pass "an export without timestamp.json is named"
