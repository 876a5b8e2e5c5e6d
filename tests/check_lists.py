#!/usr/bin/python3
"""Every source and test file on disk is named in its meson.build.

meson.build lists files by name, never by globbing, so a renamed file fails
`meson setup`. The other direction - a new file nobody listed, a test that
silently never runs - is what this checks: for each directory, each file must
appear in its meson.build, either as its path or as the quoted name that a
foreach loop turns into the path ('osc' -> unit/test_osc.c).
"""
import glob
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")

# (meson.build, glob relative to its directory, prefix a loop adds, suffix a loop adds)
RULES = [
    ("lib/meson.build", "*.c", "", ""),
    ("lib/meson.build", "devices/*.c", "", ""),
    ("daemon/meson.build", "*.c", "", ""),
    ("tests/meson.build", "unit/test_*.c", "unit/test_", ".c"),
    ("tests/meson.build", "fuzz/fuzz_*.c", "fuzz/fuzz_", ".c"),
    ("tests/meson.build", "integration/test_*.py", "integration/test_", ".py"),
    ("tests/bench/meson.build", "*.c", "", ""),
]

missing = []
for build, pattern, prefix, suffix in RULES:
    build_path = os.path.join(root, build)
    base = os.path.dirname(build_path)
    with open(build_path) as f:
        text = f.read()
    for path in sorted(glob.glob(os.path.join(base, pattern))):
        rel = os.path.relpath(path, base)
        names = ["'%s'" % rel, "'%s'" % os.path.basename(rel)]
        if prefix and rel.startswith(prefix) and rel.endswith(suffix):
            names.append("'%s'" % rel[len(prefix):len(rel) - len(suffix)])
        if not any(n in text for n in names):
            missing.append("%s: not named in %s (add %s to its list)" % (
                os.path.relpath(path, root), build, names[-1]))

# Documents the code cites (ARCHITECTURE.md, README.md) must be part of the project: a
# comment saying "see DESIGN.md" for a file nobody has is worse than none.
cited = re.compile(r"\b([A-Z][A-Z_]+\.md)\b")
for pattern in ("lib/*.[ch]", "lib/devices/*.[ch]", "daemon/*.c", "tests/*/*.py", "tests/*/*.c",
                "*.md", "conf/*.[0-9]", "conf/emgd.conf"):
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path, errors="replace") as f:
            for n, line in enumerate(f, 1):
                for doc in cited.findall(line):
                    if not os.path.exists(os.path.join(root, doc)):
                        missing.append("%s:%d: cites %s, which is not in the project" % (
                            os.path.relpath(path, root), n, doc))

for m in missing:
    print(m)
if missing:
    sys.exit(1)
print("every file is named in its meson.build (%d rules); every cited .md exists" % len(RULES))
