#!/usr/bin/env python3
"""Runs the policy bundle in OPA, the reference Rego engine.

Loads a policy directory exactly as `shieldops policy test` does
(src/policy/bundle.rs, `Bundle::from_dir`): every `*.rego` file under the
directory, recursively, and every `data.json`, deep-merged in path order at
the root of `data` (objects merge key by key; anything else is replaced, the
later file winning).

    opa_test.py DIR           run every `test_*` rule; print PASS/FAIL per test
                              and a closing `N passed, N failed` line; exit 1 on
                              any failure or error, 2 when there are no tests.
    opa_test.py --decide DIR  batch mode: the bundle without its tests; read one
                              JSON input document per line on stdin and write one
                              JSON line per input: {"decision": ...} with
                              data.shieldops.decision, {"undefined": true}, or
                              {"error": "..."}.

Needs the `opa_bindings` module (PyPI opa-golib-python-bindings), installed by
scripts/install-test-deps.sh into its own virtual environment.
"""

import json
import os
import re
import sys

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
# A test is a plain rule `test_x if ...` / `test_x { ... }` at the start of a
# line, never a function `test_x(...)`: the same rules `policy test` runs.
TEST_RE = re.compile(r"^(test_[A-Za-z0-9_]+)\b(?!\s*\()", re.MULTILINE)


def merge(base, over):
    """Deep merge as bundle.rs `merge`: objects merge, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        for key, value in over.items():
            base[key] = merge(base[key], value) if key in base else value
        return base
    return over


def bundle_files(root):
    """Every file under `root`, sorted by full path (as `Bundle::from_dir`)."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out.append(os.path.join(dirpath, name))
    # Rust sorts PathBufs component-wise; compare the same way.
    out.sort(key=lambda p: os.path.relpath(p, root).split(os.sep))
    return out


def load(root, include_tests):
    """An OPA engine with the bundle's policies and merged data; the test modules."""
    engine = OpaEngine()
    data = {}
    modules = []
    for path in bundle_files(root):
        name = os.path.basename(path)
        is_rego = name.endswith(".rego")
        is_test = name.endswith("_test.rego")
        if name == "data.json":
            with open(path, encoding="utf-8") as f:
                try:
                    doc = json.load(f)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{e.lineno}:{e.colno}: invalid data document: {e.msg}")
            if not isinstance(doc, dict):
                sys.exit(f"{path}: invalid data document: the top level must be a JSON object")
            data = merge(data, doc)
        elif is_rego and (include_tests or not is_test):
            with open(path, encoding="utf-8") as f:
                source = f.read()
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            try:
                engine.add_policy(rel, source)
            except OpaError as e:
                sys.exit(f"{path}: {e.message}")
            modules.append((rel, source))
    engine.add_data(data)
    return engine, modules


def tests_of(modules):
    """(file, package, rule) for every test rule, in file then source order, once each."""
    seen = []
    for rel, source in modules:
        package = PACKAGE_RE.search(source)
        if package is None:
            continue
        for rule in TEST_RE.findall(source):
            test = (rel, package.group(1), rule)
            if test not in seen:
                seen.append(test)
    return seen


def run_tests(root):
    engine, modules = load(root, include_tests=True)
    tests = tests_of(modules)
    if not tests:
        print(f"no test_* rules found under {root}")
        return 2
    passed = failed = 0
    current = None
    for rel, package, rule in tests:
        if rel != current:
            if current is not None:
                print()
            print(f"{rel}:")
            current = rel
        name = f"data.{package}.{rule}"
        try:
            result = engine.eval_document(f"{package}.{rule}")
        except OpaUndefinedError:
            result = None
        except OpaError as e:
            failed += 1
            print(f"{name}: FAIL (error)")
            for line in e.message.splitlines():
                print(f"  {line}")
            continue
        if result is True:
            passed += 1
            print(f"{name}: PASS")
        else:
            failed += 1
            print(f"{name}: FAIL")
    print("-" * 80)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def decide(root):
    engine, _ = load(root, include_tests=False)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
            out = {"decision": engine.eval_document("shieldops.decision", value)}
        except OpaUndefinedError:
            out = {"undefined": True}
        except (OpaError, ValueError) as e:
            out = {"error": str(e)}
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
        sys.stdout.flush()
    return 0


def main(argv):
    if len(argv) == 2 and argv[0] == "--decide":
        return decide(argv[1])
    if len(argv) == 1 and not argv[0].startswith("-"):
        return run_tests(argv[0])
    sys.stderr.write("usage: opa_test.py DIR | opa_test.py --decide DIR\n")
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
