#!/usr/bin/env python3
"""Checks two rules of the layout, exit 1 when either is broken:

1. The top-level modules of src/ import each other in no cycle. Every `crate::<module>`
   path (including `use crate::{a::X, b}` groups) in each top-level module's files makes
   an edge; every strongly connected component of more than one module is reported with
   the files that make it. `--graph` prints the edges.
2. Each table of migrations/ has all its SQL (`FROM`, `INTO`, `UPDATE` the table) in one
   module of src/.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\buse\s+crate::\{(.*?)\};", re.S)


def top_level_names(group: str):
    depth, name, names = 0, "", []
    for ch in group:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.append(name)
            name = ""
            continue
        if depth == 0:
            name += ch
    names.append(name)
    for n in names:
        m = re.match(r"\s*([a-z_][a-z0-9_]*)", n)
        if m:
            yield m.group(1)


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def modules():
    for entry in sorted(SRC.iterdir()):
        if entry.name in ("lib.rs", "main.rs"):
            continue
        if entry.is_dir():
            yield entry.name, sorted(entry.rglob("*.rs"))
        elif entry.suffix == ".rs":
            yield entry.stem, [entry]


def graph():
    mods = dict(modules())
    edges = {m: {} for m in mods}
    for mod, files in mods.items():
        for f in files:
            text = strip_comments(f.read_text())
            found = set(PATH.findall(text))
            for g in GROUP.findall(text):
                found.update(top_level_names(g))
            for dep in found:
                if dep in mods and dep != mod:
                    edges[mod].setdefault(dep, f.relative_to(SRC.parent))
    return edges


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def table_homes():
    migrations = SRC.parent / "migrations"
    tables = set()
    for sql in migrations.glob("*.sql"):
        tables.update(
            m.group(1).lower()
            for m in re.finditer(r"(?i)create table (?:if not exists )?([a-z_]+)", sql.read_text())
        )
    sources = {f: strip_comments(f.read_text()) for f in SRC.rglob("*.rs")}
    homes = {}
    for table in sorted(tables):
        statement = re.compile(r"(?i)\b(?:FROM|INTO|UPDATE)\s+" + table + r"\b")
        homes[table] = sorted(
            str(f.relative_to(SRC.parent)) for f, text in sources.items() if statement.search(text)
        )
    return homes


def main():
    failed = False
    for table, files in table_homes().items():
        if len(files) > 1:
            failed = True
            print(f"table {table} has SQL in {len(files)} modules: {', '.join(files)}")
        elif "--graph" in sys.argv:
            print(f"table {table}: {', '.join(files) or 'no SQL'}")
    edges = graph()
    if "--graph" in sys.argv:
        for m, deps in sorted(edges.items()):
            print(f"{m} -> {' '.join(sorted(deps))}")
    cycles = [c for c in sccs(edges) if len(c) > 1]
    if not cycles and not failed:
        print(f"layers: {len(edges)} top-level modules, no import cycle; each table's SQL in one module")
        return 0
    for comp in cycles:
        print("import cycle among: " + ", ".join(comp))
        for m in comp:
            for dep, where in sorted(edges[m].items()):
                if dep in comp:
                    print(f"  {m} -> {dep}  ({where})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
