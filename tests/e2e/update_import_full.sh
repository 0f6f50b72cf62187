#!/bin/bash
# 'vigilctl update import' on a full disk (docs/updates.md): the site
# repository lives on a small tmpfs, a good export that rotates the
# timestamp key through root version 2 is imported with room for only
# part of it. The import fails saying nothing was changed, and nothing
# was: the site verifies as before (root v1, timestamp v1), no temporary
# file is left, and the same export goes in once there is room. Needs
# root to mount.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || skip "jq missing (scripts/install-deps installs it)"
U() { "$CTL" update "$@"; }
cd "$T" || fail "cd $T"

mkdir site
if ! mount -t tmpfs -o size=1m tmpfs site 2>/dev/null; then
	skip "cannot mount a tmpfs (needs root)"
fi
at_exit 'umount "$T/site"'

U keygen --dir keys >/dev/null || fail "keygen"
U keygen --dir keys --role timestamp --name 2 >/dev/null || fail "keygen ts2"
mkdir online
cp keys/targets.key keys/snapshot.key keys/timestamp.key online/
U root --repo repo --root-key keys/root.key --targets-key keys/targets.pub \
	--snapshot-key keys/snapshot.pub --timestamp-key keys/timestamp.pub \
	>/dev/null || fail "root"
echo 'rule r1 { condition: true }' >r1.yar
U publish --repo repo --keys online --kind rules --name rules/r1.yar \
	--version 1 r1.yar >/dev/null || fail "publish 1"
U export --repo repo --out e1.vu >/dev/null || fail "export 1"
U import --in e1.vu --repo site --root repo/1.root.json >"$T/out" 2>&1 ||
	fail "import 1: $(cat "$T/out")"

# Root v2 rotates the timestamp key; everything re-signed under it.
U root --repo repo --root-key keys/root.key --timestamp-key keys/timestamp-2.pub \
	>/dev/null || fail "root v2"
rm online/timestamp.key
cp keys/timestamp-2.key online/
echo 'rule new { condition: true }' >new.yar
U publish --repo repo --keys online --kind rules --name rules/new.yar \
	--version 2 new.yar >/dev/null || fail "publish 2"
U export --repo repo --out e2.vu >/dev/null || fail "export 2"

(cd site && find . -type f -exec sha256sum {} + | sort) >before.sum
# Disk full: two 4 KiB pages left (the new artifact and 2.root.json fit,
# nothing after them).
free=$(stat -f -c %a site)
dd if=/dev/zero of=site/filler bs=4096 count=$((free - 2)) 2>/dev/null || true
if U import --in e2.vu --repo site >"$T/full.out" 2>&1; then
	fail "an import onto a full disk succeeded: $(cat "$T/full.out")"
fi
rm site/filler
(cd site && find . -type f -exec sha256sum {} + | sort) >after.sum
diff before.sum after.sum >"$T/out" || fail "the failed import changed the site: $(cat "$T/out")"
expect_contains "$(cat "$T/full.out")" "No space left on device"
expect_contains "$(cat "$T/full.out")" "nothing was changed there"
U verify --repo site --root repo/1.root.json >"$T/out" 2>&1 ||
	fail "the site no longer verifies: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "OK: root v1, timestamp v1"
pass "a disk full mid-import changes nothing; the site verifies as before"

U import --in e2.vu --repo site >"$T/out" 2>&1 ||
	fail "retry with room: $(cat "$T/out")"
expect_contains "$(cat "$T/out")" "root v2, timestamp v2"
U verify --repo site --root repo/1.root.json >"$T/out" 2>&1 ||
	fail "verify after retry: $(cat "$T/out")"
cmp site/targets/"$(sha256sum new.yar | cut -c1-64)" new.yar ||
	fail "the new rule set differs at the site"
[ -z "$(find site -name '*.import.*')" ] || fail "temporary files left"
pass "the same export goes in once there is room"
