#!/usr/bin/env python3
"""Mutation testing of three areas, each against its own fast unit tests.

    .venv/bin/python bench/mutation.py [--only transformer,theme,cache] [--jobs 1] [--list] [--no-write]

    transformer  model/transformer.py, every function and method and the ACTIVATIONS table
                 -> tests/test_transformer_unit.py
    theme        scenes/parts/theme.py: fmt, fmt_percent, fmt_int, visible_piece -> tests/test_formatting.py
    cache        model/cache.py: current_umask, atomic_path, atomic_write_text, write_json,
                 read_json, cached -> tests/test_cache_unit.py

Why not mutmut: mutmut 3.8.1 (tried first) never mutates a decorated function
(mutmut/mutation/file_mutation.py: "ignore decorated functions"), and here the decorated
functions are the heart of two targets: atomic_path (@contextlib.contextmanager), cached's
inner (@functools.wraps), Transformer.forward (@torch.no_grad), rotary_angles and
future_mask (@functools.lru_cache). So this is a small mutation tool of its own, with the
classic operators:

    arithmetic   + <-> -, * <-> /, // -> /, % -> //, ** -> *, @ -> *, & <-> |, ^ -> &, << <-> >>
    comparison   < -> <=, <= -> <, > -> >=, >= -> >, == <-> !=, in <-> not in, is <-> is not
    boolean      and <-> or; `not x`, `-x`, `~x` -> x
    constants    True <-> False, n -> n + 1, "s" -> "XXsXX" ("" -> "XX"), f-string parts included
    statements   an expression statement, assignment, return, raise or if -> pass

Docstrings, annotations and decorators are not mutated. Each mutant is the module's syntax
tree with one change, compiled with the original file name and executed into the already
imported module (so `from model.transformer import Transformer` in a test gets the mutant),
in a forked child that then runs pytest on the target's test file with -x. The parent has
imported torch, manim and pytest once, so a mutant costs its tests, not the imports.
Exit status 0 = survived, anything else = killed, over the time limit = timeout (counted as
detected, as Stryker does). The source files on disk are never changed.

Surviving mutants that are equivalent (no test could tell them apart) are listed in
EQUIVALENT below with a one-line reason; they stay in the denominator of the score.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOOL = "bench/mutation.py (own AST mutator; see its docstring for why not mutmut 3.8.1)"

TARGETS = {
    "transformer": ("model/transformer.py", "model.transformer", None, ("ACTIVATIONS",), "tests/test_transformer_unit.py"),
    "theme": ("scenes/parts/theme.py", "scenes.parts.theme", ("fmt", "fmt_percent", "fmt_int", "visible_piece"), (),
              "tests/test_formatting.py"),
    "cache": ("model/cache.py", "model.cache",
              ("current_umask", "atomic_path", "atomic_write_text", "write_json", "read_json", "cached"), (),
              "tests/test_cache_unit.py"),
}

# "qualname | before -> after": why no test can kill it. Filled in from the surviving mutants.
EQUIVALENT: dict[str, str] = {
    "Norm.forward | -1 -> 1": "x is always [pos, d_model], so mean over dim 1 is mean over dim -1",
    "fmt | value > 0 -> value >= 0": "a value that reaches this line shows a non-zero number, so it is never 0",
    "cached | '=' -> 'XX=XX'": "only the spelling of the text that is hashed into the key changes, the same on every call",
    "cached | '.' -> 'XX.XX'": "only the spelling of the text that is hashed into the key changes, the same on every call",
    "current_umask | 0 -> 1": "the temporary mask is replaced by the old one on the next line; only the returned old mask is seen",
}

SAMPLED: dict[str, tuple[int, int]] = {}  # target -> (mutants run, every n-th), when --every

BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
         ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.BitAnd: ast.BitOr,
         ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitAnd, ast.LShift: ast.RShift, ast.RShift: ast.LShift}
CMPOP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BOOLOP = {ast.And: ast.Or, ast.Or: ast.And}
DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.Return, ast.Raise, ast.If)


@dataclass
class Mutant:
    target: str
    index: int  # position of the node in ast.walk order of a fresh parse
    kind: str
    detail: object
    qualname: str
    line: int
    before: str
    after: str
    status: str = ""
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.qualname} | {self.before} -> {self.after}"


def short(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def roots(tree: ast.Module, functions, assigns):
    """(qualname, node) for every function/method to mutate, and the named module-level assignments."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if functions is None or node.name in functions:
                yield node.name, node
        elif isinstance(node, ast.ClassDef) and functions is None:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in assigns for t in node.targets):
            yield node.targets[0].id, node


def skipped(root: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, decorators (and everything under them)."""
    skip = []
    for node in ast.walk(root):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            skip += node.decorator_list
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                skip += [node.returns] if node.returns else []
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                skip.append(body[0])
        elif isinstance(node, ast.arg) and node.annotation:
            skip.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            skip.append(node.annotation)
    return {id(n) for s in skip for n in ast.walk(s)}


def mutations(node: ast.AST):
    """(kind, detail, after-text) for one node."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP:
        new = BINOP[type(node.op)]
        yield "binop", new, ast.unparse(ast.BinOp(node.left, new(), node.right))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMPOP:
                ops = list(node.ops)
                ops[i] = CMPOP[type(op)]()
                yield "compare", i, ast.unparse(ast.Compare(node.left, ops, node.comparators))
    elif isinstance(node, ast.BoolOp):
        new = BOOLOP[type(node.op)]
        yield "boolop", new, ast.unparse(ast.BoolOp(new(), node.values))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
        yield "unary", None, ast.unparse(node.operand)
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            yield "const", not v, repr(not v)
        elif isinstance(v, (int, float)):
            yield "const", v + 1, repr(v + 1)
        elif isinstance(v, str):
            new = f"XX{v}XX" if v else "XX"
            yield "const", new, repr(new)
    if isinstance(node, DELETABLE):
        yield "delete", None, "pass"


def apply(node: ast.AST, parent: ast.AST, kind: str, detail) -> None:
    if kind == "binop":
        node.op = detail()
    elif kind == "compare":
        node.ops[detail] = CMPOP[type(node.ops[detail])]()
    elif kind == "boolop":
        node.op = detail()
    elif kind == "const":
        node.value = detail
    elif kind in ("unary", "delete"):
        replacement = node.operand if kind == "unary" else ast.copy_location(ast.Pass(), node)
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, replacement)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if item is node:
                        value[i] = replacement


def enumerate_mutants(target: str) -> list[Mutant]:
    path, _, functions, assigns, _ = TARGETS[target]
    source = (ROOT / path).read_text()
    tree = ast.parse(source)
    index = {id(n): i for i, n in enumerate(ast.walk(tree))}
    found = []
    for qualname, root in roots(tree, functions, assigns):
        skip = skipped(root)
        for node in ast.walk(root):
            if id(node) in skip or node is root and not isinstance(root, ast.Assign):
                continue
            before = ast.get_source_segment(source, node) or ast.unparse(node)
            for kind, detail, after in mutations(node):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and not before.startswith(("'", '"')):
                    before = repr(node.value)  # a piece of an f-string
                found.append(Mutant(target, index[id(node)], kind, detail, qualname, node.lineno,
                                    short(before), short(after)))
    return found


def mutant_code(m: Mutant):
    path = ROOT / TARGETS[m.target][0]
    tree = ast.parse(path.read_text())
    nodes = list(ast.walk(tree))
    parents = {id(c): p for p in nodes for c in ast.iter_child_nodes(p)}
    node = nodes[m.index]
    apply(node, parents[id(node)], m.kind, m.detail)
    ast.fix_missing_locations(tree)
    return compile(tree, str(path), "exec")


def child(m: Mutant | None, tests: str) -> int:
    """In the forked child: swap in the mutant, run the tests quietly, return pytest's status."""
    import pytest

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        if m is not None:
            module = sys.modules[TARGETS[m.target][1]]
            exec(mutant_code(m), module.__dict__)
        return int(pytest.main([str(ROOT / tests), "-x", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                                "-p", "no:hypothesispytest", "-W", "ignore"]))
    except BaseException:
        return 99


def spawn(m: Mutant | None, tests: str) -> int:
    pid = os.fork()
    if pid == 0:
        status = 99
        try:
            status = child(m, tests)
        finally:
            os._exit(status)
    return pid


def run_all(mutants: list[Mutant], tests: str, limit: float, jobs: int) -> None:
    todo, running = list(mutants), {}
    done = 0
    while todo or running:
        while todo and len(running) < jobs:
            m = todo.pop(0)
            running[spawn(m, tests)] = (m, time.monotonic())
        time.sleep(0.05)
        for pid, (m, start) in list(running.items()):
            got, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - start
            if got == 0 and elapsed > limit:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                m.status = "timeout"
            elif got == 0:
                continue
            else:
                m.status = "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
            m.seconds = elapsed
            del running[pid]
            done += 1
            if m.status == "survived":
                print(f"  survived L{m.line} {m.key}", flush=True)
            if done % 25 == 0:
                print(f"  {done}/{len(mutants)}", flush=True)


def prepare() -> None:
    """Import everything once in the parent (the children fork from it) and warm torch up."""
    import torch

    torch.set_num_threads(1)  # 2 shared cores; and no OpenMP pool to inherit across fork
    import pytest  # noqa: F401

    for _, module, *_ in TARGETS.values():
        __import__(module)
    from model.config import ModelConfig
    from model.transformer import Transformer

    cfg = ModelConfig(name="warm", family="llama", n_layers=1, d_model=4, n_heads=2, n_kv_heads=1, d_head=2,
                      d_mlp=4, vocab_size=5, n_ctx=8, norm_eps=1e-5, activation="silu")
    x = Transformer(cfg).double()(torch.tensor([0, 1]))
    torch.testing.assert_close(x, x)  # its first call imports for seconds


def report(results: dict[str, list[Mutant]], seconds: float) -> str:
    from bench.results import machine_line, table

    rows, lists = [], []
    for target, ms in results.items():
        path, _, functions, assigns, tests = TARGETS[target]
        n = len(ms)
        count = {s: sum(m.status == s for m in ms) for s in ("killed", "survived", "timeout")}
        score = 100 * (count["killed"] + count["timeout"]) / n if n else 0.0
        rows.append([target, f"`{path}`", f"`{tests}`", str(n), str(count["killed"]), str(count["survived"]),
                     str(count["timeout"]), f"{score:.1f}%"])
        surv = [m for m in ms if m.status == "survived"]
        if surv:
            lists.append(f"Surviving in {target}:\n")
            for m in surv:
                reason = EQUIVALENT.get(m.key)
                lists.append(f"- L{m.line} `{m.qualname}`: `{m.before}` → `{m.after}` — "
                             + (f"equivalent: {reason}" if reason else "not yet killed"))
            lists.append("")
    scope = {t: ("every function and method" + (", " + ", ".join(a) if a else "") if f is None else ", ".join(f))
             for t, (_, _, f, a, _) in TARGETS.items() if t in results}
    return "\n".join([
        machine_line(),
        "",
        f"Tool: {TOOL}, Python {sys.version.split()[0]}. One mutation per mutant (arithmetic, comparison and boolean "
        "operator swaps, constants, removed statements); each mutant runs only its target's unit tests (-x), in a "
        f"forked child. Score = (killed + timeout) / mutants. Not in CI. {seconds / 60:.1f} min for the run"
        + "".join(f"; {t}: only 1 mutant in {k}, in enumeration order ({n} run), to fit a busy 2-core machine"
                  for t, (n, k) in SAMPLED.items()) + ".",
        "",
        "Mutated: " + "; ".join(f"{t}: {s}" for t, s in scope.items()) + ".",
        "",
        table(["target", "file", "tests", "mutants", "killed", "survived", "timeout", "score"], rows),
        "",
        *lists,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--every", default="", help="e.g. transformer=5: run only every 5th mutant of that target "
                        "(a deterministic sample, for a short run on a busy machine)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()
    targets = [t for t in args.only.split(",") if t]
    os.chdir(ROOT)
    if args.list:
        for t in targets:
            for m in enumerate_mutants(t):
                print(f"{t} L{m.line} {m.key}")
        return
    prepare()
    start, results = time.monotonic(), {}
    for t in targets:
        tests = TARGETS[t][4]
        t0 = time.monotonic()
        pid = spawn(None, tests)  # the unmutated code must pass, and sets the time limit
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        baseline = time.monotonic() - t0
        if status != 0:
            sys.exit(f"{tests} fails on the unmutated code (pytest status {status})")
        mutants = enumerate_mutants(t)
        every = dict(x.split("=") for x in args.every.split(",") if x).get(t)
        if every:
            mutants = mutants[:: int(every)]
            SAMPLED[t] = (len(mutants), int(every))
        print(f"{t}: {len(mutants)} mutants, baseline {baseline:.1f} s", flush=True)
        run_all(mutants, tests, limit=5 * baseline + 10, jobs=args.jobs)
        results[t] = mutants
    seconds = time.monotonic() - start
    text = report(results, seconds)
    print(text)
    if not args.no_write and set(targets) == set(TARGETS):
        from bench.results import write_section

        write_section("mutation", "Mutation testing: `bench/mutation.py`", text)


if __name__ == "__main__":
    main()
