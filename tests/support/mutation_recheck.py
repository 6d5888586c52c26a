"""Re-check mutants of a mutmut run, each in a fresh process, against the current tests.

usage: python -m tests.support.mutation_recheck [--survivors PATTERN] [NAME...] [-- TEST...]
(`./dev mutation-recheck` runs it). Run from the repository root after `./dev mutation` made
`mutants/`; not while a mutmut run is going on there.

Why a fresh process: mutmut runs each mutant in a fork of a process that has already imported
the engine and run the tests once, so code that runs at import (rule registration, the
cross-parameter checks) and anything cached before the fork run unmutated: such a mutant
"survives" whatever the tests. Here MUTANT_UNDER_TEST is set before Python starts.

TEST: pytest node ids or files; the word `cover` stands for the tests the run recorded as covering
the mutant's function (mutants/mutmut-stats.json). With no TEST: `cover`. The current `tests/`
are copied into `mutants/` first, so tests written since the run count.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path.cwd()
MUTANTS = ROOT / "mutants"


def _survivors(pattern: str) -> list[str]:
    listed = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "results"],
                            capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[0].strip() for line in listed.splitlines() if "survived" in line]
    return [n for n in names if re.search(pattern, n)]


def main(argv: list[str]) -> int:
    if not (MUTANTS / "mutmut-stats.json").exists():
        print("mutation-recheck: no mutants/ here: run ./dev mutation first", file=sys.stderr)
        return 2
    names, tests = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    if names[:1] == ["--survivors"]:
        names = _survivors(names[1]) + names[2:]
    tests = tests or ["cover"]
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args"]
    shutil.rmtree(MUTANTS / "tests")
    shutil.copytree(ROOT / "tests", MUTANTS / "tests",
                    ignore=shutil.ignore_patterns("__pycache__"))

    def selection(name: str) -> list[str]:
        function = re.sub(r"__mutmut_\d+$", "", name)
        chosen: list[str] = []
        for test in tests:
            chosen += (sorted(stats["tests_by_mangled_function_name"].get(function, []))
                       if test == "cover" else [test])
        return list(dict.fromkeys(chosen))

    def failed(chosen: list[str], mutant: str) -> bool:
        env = dict(os.environ, PYTHONPATH=str(MUTANTS), MUTANT_UNDER_TEST=mutant,
                   ENGINE_MUTATION_RUN="1")
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", *extra, *chosen],
                                  cwd=MUTANTS, env=env, capture_output=True, timeout=600)
        except subprocess.TimeoutExpired:
            return True  # as mutmut counts a timeout: the mutant made the tests hang
        return done.returncode != 0

    passing: set[tuple[str, ...]] = set()
    killed = survived = 0
    for name in names:
        chosen = selection(name)
        if not chosen:
            print(f"no tests  {name}")
            continue
        if tuple(chosen) not in passing:
            if failed(chosen, ""):
                print(f"mutation-recheck: the tests fail with no mutant on ({name})",
                      file=sys.stderr)
                return 1
            passing.add(tuple(chosen))
        if failed(chosen, name):
            killed += 1
            print(f"killed    {name}", flush=True)
        else:
            survived += 1
            print(f"survived  {name}", flush=True)
    print(f"{killed} killed, {survived} survived")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
