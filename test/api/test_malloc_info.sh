#!/usr/bin/env bash
# test_malloc_info.sh PROGRAM [LIBHAKMEM] — malloc_info(0, stdout) of PROGRAM --print-info
# (test_glibc_ext.c: 1000 blocks of 100 B and 3 of 2 MiB live) parses as XML with
# python3's xml.etree and describes those blocks. With LIBHAKMEM, PROGRAM runs under
# LD_PRELOAD=LIBHAKMEM.
set -u
prog=$1
lib=${2:-}
if [ -n "$lib" ]; then
  xml=$(LD_PRELOAD=$lib "$prog" --print-info) || { echo "FAILED: $prog --print-info exited $?"; echo "0 passed, 1 failed"; exit 1; }
else
  xml=$("$prog" --print-info) || { echo "FAILED: $prog --print-info exited $?"; echo "0 passed, 1 failed"; exit 1; }
fi
printf '%s\n' "$xml" | python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
checks = []
def check(name, ok, detail=""):
    checks.append(ok)
    if not ok: print("FAILED:", name, detail)
check("root is <malloc version=1 allocator=hakmem>", root.tag == "malloc" and root.get("version") == "1"
      and root.get("allocator") == "hakmem", root.attrib)
check("hakmem_version", root.get("hakmem_version", "").count(".") == 2, root.attrib)
tiers = {t.get("name"): t for t in root.iter("tier")}
check("four tiers", set(tiers) == {"tiny", "mid", "pool", "large"}, list(tiers))
check("3 large blocks live", int(tiers["large"].get("blocks")) >= 3, tiers["large"].attrib)
check("large in_use >= 6 MiB", int(tiers["large"].get("in_use")) >= 3 * (2 << 20), tiers["large"].attrib)
sizes = [s for s in root.iter("size")]
c112 = [s for s in sizes if s.get("block_size") == "112"]
check("a 112-byte class with >= 1000 blocks", len(c112) == 1 and int(c112[0].get("count")) >= 1000,
      [s.attrib for s in c112])
check("112-byte class in tier tiny", c112 and c112[0].get("tier") == "tiny")
check("size in_use = count * block_size", all(int(s.get("in_use")) == int(s.get("count")) * int(s.get("block_size"))
      for s in sizes), [s.attrib for s in sizes][:5])
tot = {t.get("type"): int(t.get("size")) for t in root.iter("total")}
check("totals", set(tot) >= {"in_use", "held", "cached", "unused_resident", "rss"}, tot)
check("in_use >= what is live", tot["in_use"] >= 1000 * 112 + 3 * (2 << 20), tot)
check("held >= in_use", tot["held"] >= tot["in_use"], tot)
check("tiny in_use <= total", int(tiers["tiny"].get("in_use")) <= tot["in_use"], tot)
print("%d passed, %d failed" % (sum(checks), len(checks) - sum(checks)))
sys.exit(0 if all(checks) else 1)
'
