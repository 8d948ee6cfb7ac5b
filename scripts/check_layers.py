#!/usr/bin/env python3
"""Checks the rules of the layout (docs/architecture.md); exit 1 when one is broken.

1. No import cycle anywhere in src/: not among the top-level modules, nor among the
   files and folders of any folder (a folder's `mod.rs` is its face: an item it
   re-exports counts as the sibling that defines it).
2. The wings: every top-level module has a place in WINGS. The strategy wing and the
   platform wing never import each other; the floor imports neither wing nor the top;
   the wings never import the top; `monitors` imports only the floor.
3. Fan-out: no top-level module outside ROOTS imports more than FAN_OUT_LIMIT others,
   leaves not counted (a module that imports nothing of ours passes no coupling on).
4. Each table of migrations/ has all its SQL (`FROM`, `JOIN`, `INTO`, `UPDATE` the
   table) in one module of src/.

Each failure names the file and the imported path. `--graph` prints the top-level edges.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

# Where each top-level module lives. Adding a module means adding it here.
WINGS = {
    "top": {"app", "cli", "config", "http"},
    "strategy": {
        "backtest", "batches", "conditions", "indicators", "logic_tree", "message", "strategy", "trigger",
    },
    "platform": {"alertmanager", "analysis", "ops_alerts", "ops_rules", "platform_health"},
    "floor": {
        "bounded_body", "digest", "failpoint", "frequency", "market", "metrics", "monitors",
        "notify", "outbound", "sharding", "storage", "telemetry", "validation",
    },
}
# What each place may import (besides itself).
MAY_IMPORT = {
    "top": {"top", "strategy", "platform", "floor"},
    "strategy": {"strategy", "floor"},
    "platform": {"platform", "floor"},
    "floor": {"floor"},
}
ROOTS = {"app", "http", "config"}
FAN_OUT_LIMIT = 8

PATH = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)(::\{)?")


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def without_inline_tests(text: str) -> str:
    """An inline `#[cfg(test)] mod tests { … }` (its `super` is the file itself)."""
    at = re.search(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text)
    return text[: at.start()] if at else text


def group_names(text: str, start: int):
    """The first segment of each path in the `{…}` group opening at text[start]."""
    depth, name, names = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        elif ch == "," and depth == 1:
            names.append(name)
            name = ""
            continue
        if depth == 1:
            name += ch
    names.append(name)
    for n in names:
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", n)
        if m and m.group(1) != "self":
            yield m.group(1)


def module_path(f: pathlib.Path):
    parts = list(f.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def references(f: pathlib.Path):
    """Every path `f` names, absolute from the crate root: (segments, as written)."""
    text = without_inline_tests(strip_comments(f.read_text()))
    here = module_path(f)
    for m in PATH.finditer(text):
        written = m.group(1)
        segments = written.split("::")
        tails = [[]]
        if m.group(2):
            tails = [[name] for name in group_names(text, m.end() - 1)]
        base = []
        if segments[0] == "crate":
            base, segments = [], segments[1:]
        else:
            base = list(here)
            while segments and segments[0] in ("super", "self"):
                if segments.pop(0) == "super":
                    base = base[:-1]
        for tail in tails:
            full = base + segments + tail
            yield full, written + ("::" + tail[0] if tail else "")


def top_modules():
    mods = {}
    for entry in sorted(SRC.iterdir()):
        if entry.name in ("lib.rs", "main.rs"):
            continue
        if entry.is_dir():
            mods[entry.name] = sorted(entry.rglob("*.rs"))
        elif entry.suffix == ".rs":
            mods[entry.stem] = [entry]
    return mods


def graph():
    """Top-level edges: module -> {dependency: (file, path as written)}."""
    mods = top_modules()
    edges = {m: {} for m in mods}
    for mod, files in mods.items():
        for f in files:
            for full, written in references(f):
                if full and full[0] in mods and full[0] != mod:
                    edges[mod].setdefault(full[0], (f.relative_to(SRC.parent), written))
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


def reexports(face: pathlib.Path):
    """Items a folder's mod.rs re-exports from its children: item -> child."""
    found = {}
    if not face.exists():
        return found
    text = strip_comments(face.read_text())
    for m in re.finditer(r"\bpub(?:\([a-z]+\))?\s+use\s+(?:self::)?([a-z_][a-z0-9_]*)::(\{.*?\}|[A-Za-z_][A-Za-z0-9_]*)\s*;", text, re.S):
        child, items = m.group(1), m.group(2)
        for item in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?", items.strip("{}")):
            found[item[1] or item[0]] = child
    return found


def folder_cycles():
    """Cycles among the children (files and folders) of every folder of src/."""
    failures = []
    for folder in sorted([SRC] + [d for d in SRC.rglob("*") if d.is_dir()]):
        prefix = list(folder.relative_to(SRC).parts)
        units = {}
        for entry in folder.iterdir():
            if entry.is_dir():
                units[entry.name] = sorted(entry.rglob("*.rs"))
            elif entry.suffix == ".rs" and entry.stem not in ("mod", "lib", "main"):
                units[entry.stem] = [entry]
        if folder == SRC:
            continue  # the top level is checked with the wings
        items = reexports(folder / "mod.rs")
        edges = {u: {} for u in units}
        for unit, files in units.items():
            for f in files:
                for full, written in references(f):
                    if full[: len(prefix)] != prefix or len(full) <= len(prefix):
                        continue
                    child = full[len(prefix)]
                    target = child if child in units else items.get(child)
                    if target and target != unit:
                        edges[unit].setdefault(target, (f.relative_to(SRC.parent), written))
        for comp in sccs(edges):
            if len(comp) > 1:
                where = folder.relative_to(SRC.parent)
                failures.append(f"import cycle in {where}/ among: " + ", ".join(comp))
                for u in comp:
                    for dep, (f, written) in sorted(edges[u].items()):
                        if dep in comp:
                            failures.append(f"  {u} -> {dep}  ({f}: {written})")
    return failures


def place_of(module):
    for place, members in WINGS.items():
        if module in members:
            return place
    return None


def wing_failures(edges):
    failures = []
    for module in sorted(edges):
        place = place_of(module)
        if place is None:
            failures.append(f"module {module} has no place in WINGS (scripts/check_layers.py)")
            continue
        for dep, (f, written) in sorted(edges[module].items()):
            dep_place = place_of(dep)
            if dep_place is None:
                continue
            allowed = MAY_IMPORT[place]
            if module == "monitors":
                allowed = {"floor"}
            if dep_place not in allowed:
                failures.append(
                    f"{place} module {module} imports {dep_place} module {dep}: {f} uses {written}"
                )
    return failures


def fan_out_failures(edges):
    leaves = {m for m, deps in edges.items() if not deps}
    failures = []
    for module, deps in sorted(edges.items()):
        counted = sorted(d for d in deps if d not in leaves)
        if module not in ROOTS and len(counted) > FAN_OUT_LIMIT:
            failures.append(
                f"module {module} imports {len(counted)} modules (limit {FAN_OUT_LIMIT}, "
                f"leaves not counted): {', '.join(counted)}"
            )
    return failures


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
        statement = re.compile(r"(?i)\b(?:FROM|JOIN|INTO|UPDATE)\s+" + table + r"\b")
        homes[table] = sorted(
            str(f.relative_to(SRC.parent)) for f, text in sources.items() if statement.search(text)
        )
    return homes


def main():
    failures = []
    for table, files in table_homes().items():
        if len(files) > 1:
            failures.append(f"table {table} has SQL in {len(files)} modules: {', '.join(files)}")
        elif "--graph" in sys.argv:
            print(f"table {table}: {', '.join(files) or 'no SQL'}")
    edges = graph()
    if "--graph" in sys.argv:
        for m, deps in sorted(edges.items()):
            print(f"{m} ({place_of(m)}) -> {' '.join(sorted(deps))}")
    for comp in sccs(edges):
        if len(comp) > 1:
            failures.append("import cycle among: " + ", ".join(comp))
            for m in comp:
                for dep, (f, written) in sorted(edges[m].items()):
                    if dep in comp:
                        failures.append(f"  {m} -> {dep}  ({f}: {written})")
    failures += folder_cycles()
    failures += wing_failures(edges)
    failures += fan_out_failures(edges)
    if failures:
        print("\n".join(failures))
        return 1
    print(
        f"layers: {len(edges)} top-level modules in their wings, no import cycle in any "
        f"folder, fan-out within {FAN_OUT_LIMIT}; each table's SQL in one module"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
