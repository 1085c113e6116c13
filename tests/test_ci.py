"""`.ci/run` runs exactly the README's test command, on the lock, under the `ci` hypothesis
profile (derandomized, blobs printed: a CI failure replays from its log)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_ci_runs_the_readmes_test_command_and_both_install_from_the_lock() -> None:
    install_and_run, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").rstrip("\n").splitlines()
    assert ci[-1] == test
    assert "export HYPOTHESIS_PROFILE=ci" in ci
    for command in (install_and_run, test):
        assert "PIP_CONSTRAINT=constraints.txt pip install" in command


def profile_loaded(environment: dict[str, str]) -> str:
    code = ("import sys; sys.path.insert(0, 'tests'); import conftest; "
            "from hypothesis import settings; d = settings.default; "
            "print(d.derandomize, d.print_blob)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_ci_profile_is_loaded_when_ci_asks_for_it() -> None:
    # Hypothesis itself derandomizes when it sees a CI machine (`CI`, `GITHUB_ACTIONS`, ...),
    # so the "not asked" case must not look like one; its own table of those variables is
    # the only complete list.
    from hypothesis._settings import _CI_VARS

    hidden = {"HYPOTHESIS_PROFILE", *_CI_VARS}
    base = {k: v for k, v in os.environ.items() if k not in hidden}
    assert profile_loaded({**base, "HYPOTHESIS_PROFILE": "ci"}) == "True True"
    assert profile_loaded(base) == "False False"
