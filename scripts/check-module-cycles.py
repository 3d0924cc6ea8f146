#!/usr/bin/env python3
"""Fails when two modules of src/ import each other, directly or through others.

Every file under src/ is a module (`src/web/mfa.rs` is `web::mfa`, `src/web/federation/mod.rs`
is `web::federation`). A module depends on every module it names through `crate::`, `super::`
or `self::` paths, in `use` trees and in code. A parent's uses of its own children are
structure, not dependencies, and are left out. Any strongly connected group of two or more
modules is a cycle, printed with the edges that make it.

    scripts/check-module-cycles.py            # exit 0, or 1 listing the cycles
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(path: Path) -> tuple:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]):
        return ()
    return tuple(parts)


def strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand_use_tree(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix: str, rest: str):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(rest):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(rest[start:i])
                start = i + 1
        items.append(rest[start:])
        for item in filter(None, items):
            brace = item.find("{")
            if brace >= 0 and item.endswith("}"):
                walk(prefix + item[:brace], item[brace + 1 : -1])
            else:
                out.append(prefix + item.split(" as ")[0])

    walk("", tree)
    return out


def referenced_paths(text: str) -> list:
    paths = []
    for tree in re.findall(r"\buse\s+([^;]+);", text):
        paths.extend(expand_use_tree(tree))
    text = re.sub(r"\buse\s+[^;]+;", "", text)
    paths.extend(re.findall(rf"\b(?:crate|super|self)(?:::{IDENT})+", text))
    return paths


def resolve(path: str, here: tuple, modules: set):
    """The module `path` (as written in module `here`) names, or None for other crates."""
    segments = [s for s in path.split("::") if s]
    if not segments or segments[0] not in ("crate", "self", "super"):
        return None
    if segments[0] == "crate":
        base, segments = [], segments[1:]
    else:
        base = list(here)
        if segments[0] == "self":
            segments = segments[1:]
        while segments and segments[0] == "super":
            base, segments = base[:-1], segments[1:]
    target = tuple(base)
    for segment in segments:
        if target + (segment,) in modules:
            target = target + (segment,)
        else:
            break
    return target


def main() -> int:
    files = sorted(ROOT.rglob("*.rs"))
    modules = {module_of(f) for f in files}
    edges = {}
    for f in files:
        here = module_of(f)
        if here == ():
            continue
        text = strip_comments_and_strings(f.read_text())
        for path in referenced_paths(text):
            target = resolve(path, here, modules)
            if target is None or target == here or target == ():
                continue
            if target[: len(here)] == here:
                continue  # a parent using its own children
            edges.setdefault(here, set()).add(target)

    # Tarjan's strongly connected components.
    index, low, stack, on_stack, sccs, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                sccs.append(component)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            connect(v)
    name = lambda m: "::".join(m)
    for component in sccs:
        members = set(component)
        print("import cycle among: " + ", ".join(sorted(map(name, members))))
        for v in sorted(members):
            for w in sorted(edges.get(v, ())):
                if w in members:
                    print(f"  {name(v)} -> {name(w)}")
    if not sccs:
        print(f"no import cycles among {len(modules)} modules")
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
