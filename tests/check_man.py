#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keeps the man pages true to the code: every key of the config schema tables in
src/core/config.c (struct item arrays, sections followed through .sub) is written in
dnsink.yml(5) as *full.dotted.key*, and every dotted key the KEYS section of the page
writes that way is in the schema. Also, each written as *word*: every subcommand main.c
knows, every long option of main.c and of hunt.c (as *--option*), every control command of
src/core/request.c and every log format of src/core/logrec.c in dnsink(8); every rule key
of the rule schema (rule_keys in src/core/rules.c) in dnsink-rules(5).

Usage: check_man.py SOURCE_ROOT"""
import os
import re
import sys

ITEM_TABLE = re.compile(r"static const struct item (\w+)\[\] = \{(.*?)\n\};", re.S)
ENTRY = re.compile(r'\{KEY\("([a-z0-9_]+)",\s*(\w+)\)([^\n]*)')
SUB = re.compile(r"\.sub = (\w+)")


def schema_keys(config_c):
    text = open(config_c, encoding="utf-8").read()
    tables = {}
    for name, body in ITEM_TABLE.findall(text):
        tables[name] = [(m.group(1), SUB.search(m.group(3))) for m in ENTRY.finditer(body)]
    if "top_items" not in tables:
        raise SystemExit("check_man: no top_items table in %s" % config_c)
    keys, sections = [], []

    def walk(table, prefix, depth=0):
        if depth > 8:
            raise SystemExit("check_man: schema nested too deep at %s" % prefix)
        for key, sub in tables[table]:
            full = prefix + key
            if sub:
                if sub.group(1) not in tables:
                    raise SystemExit("check_man: %s: no table %s" % (full, sub.group(1)))
                sections.append(full)
                walk(sub.group(1), full + ".", depth + 1)
            else:
                keys.append(full)
    walk("top_items", "")
    return keys, sections


def read(root, *path):
    return open(os.path.join(root, *path), encoding="utf-8").read()


def table_words(text, table_re, word_re, what, problems):
    """The words @p word_re finds in the C array that @p table_re opens."""
    m = re.search(table_re + r"(.*?)\n\s*\};", text, re.S)
    if not m:
        problems.append("no %s table found: the parser is broken" % what)
        return []
    return re.findall(word_re, m.group(1))


def check_tables(root, man8, problems):
    """Options, control commands, log formats and rule keys against the pages."""
    counts = {}
    opts = []
    for f in (("src", "main.c"), ("src", "cli", "hunt.c")):
        opts += table_words(read(root, *f), r"static const struct option \w+\[\] = \{",
                            r'\{"([a-z-]+)",', "long option (%s)" % f[-1], problems)
    counts["options"] = sorted(set(opts))
    for o in counts["options"]:
        if "*--%s*" % o not in man8:
            problems.append("dnsink(8) does not describe the option '--%s'" % o)
    counts["ctl commands"] = table_words(read(root, "src", "core", "request.c"),
                                         r"\} commands\[\] = \{", r'\{"([a-z-]+)",',
                                         "control command", problems)
    for c in counts["ctl commands"]:
        if "*%s*" % c not in man8:
            problems.append("dnsink(8) does not describe the control command '%s'" % c)
    counts["log formats"] = [f for f in table_words(
        read(root, "src", "core", "logrec.c"), r"fmt_names\[[^]]*\] = \{",
        r'\] = "([a-z0-9]+)"', "log format", problems)]
    for f in counts["log formats"]:
        if "_%s_" % f not in man8:
            problems.append("dnsink(8) does not describe the hunt format '%s'" % f)
    rules5 = read(root, "man", "dnsink-rules.5.scd")
    counts["rule keys"] = table_words(read(root, "src", "core", "rules.c"),
                                      r"\} rule_keys\[\] = \{", r'\{"([a-z_]+)",',
                                      "rule key", problems)
    for k in counts["rule keys"]:
        if not re.search(r"^\*%s\*$" % re.escape(k), rules5, re.M):
            problems.append("dnsink-rules(5) does not describe the rule key '%s'" % k)
    for what, found in counts.items():
        if len(found) < 3:
            problems.append("only %d %s found: the parser is broken" % (len(found), what))
    return ", ".join("%d %s" % (len(v), k) for k, v in counts.items())


def main():
    root = sys.argv[1]
    keys, sections = schema_keys(os.path.join(root, "src", "core", "config.c"))
    page = open(os.path.join(root, "man", "dnsink.yml.5.scd"), encoding="utf-8").read()
    problems = []
    if len(keys) < 20:
        problems.append("only %d keys found in the schema: the parser is broken" % len(keys))
    for k in keys:
        if "*%s*" % k not in page:
            problems.append("dnsink.yml(5) does not describe config key '%s'" % k)
    # The reverse: a key the KEYS section describes (a definition line "*key*" alone)
    # must exist in the schema.
    m = re.search(r"^# KEYS$(.*?)^# ", page, re.S | re.M)
    if not m:
        problems.append("dnsink.yml(5) has no KEYS section")
    else:
        for d in re.findall(r"^\*([a-z0-9_.]+)\*$", m.group(1), re.M):
            if d not in keys:
                problems.append("dnsink.yml(5) describes '%s', which config.c does not know"
                                % d)
    main_c = open(os.path.join(root, "src", "main.c"), encoding="utf-8").read()
    cmds = set(re.findall(r'strcmp\(cmd, "([a-z-]+)"\)', main_c)) - {"help"}
    man8 = open(os.path.join(root, "man", "dnsink.8.scd"), encoding="utf-8").read()
    for c in sorted(cmds):
        if "*%s*" % c not in man8:
            problems.append("dnsink(8) does not describe the command '%s'" % c)
    extra = check_tables(root, man8, problems)
    for p in problems:
        print("check_man: " + p)
    print("check_man: %d config keys (%d sections), %d commands, %s checked; %d problems"
          % (len(keys), len(sections), len(cmds), extra, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
