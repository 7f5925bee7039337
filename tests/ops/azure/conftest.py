"""A fake `az` on PATH: it logs each call (argv, and the JSON of every `@file` argument with the
file's mode), keeps a web app's state, and answers like az does. FAKE_AZ_FAIL makes the calls
whose command words contain it fail, with FAKE_AZ_STDERR on stderr."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FAKE_AZ = """\
#!{python}
import json, os, stat, sys
from pathlib import Path

args = sys.argv[1:]
words = []
for arg in args:
    if arg.startswith("-"):
        break
    words.append(arg)
command = " ".join(words)
files = {{}}
for arg in args:
    if arg.startswith("@"):
        path = Path(arg[1:])
        files[arg[1:]] = {{
            "content": json.loads(path.read_text()),
            "mode": stat.S_IMODE(path.stat().st_mode),
        }}
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "files": files}}) + "\\n")

fail = os.environ.get("FAKE_AZ_FAIL")
if fail and fail in command:
    sys.stderr.write(os.environ.get("FAKE_AZ_STDERR", "ERROR: failed") + "\\n")
    sys.exit(1)

state = Path(os.environ["FAKE_AZ_LOG"] + ".state")
if command == "deployment group create":
    name = args[args.index("--name") + 1]
    outputs = {{
        "webAppName": {{"type": "String", "value": "paletai-abc123"}},
        "webAppUrl": {{"type": "String", "value": "https://paletai-abc123.azurewebsites.net"}},
        "storageAccountName": {{"type": "String", "value": "paletaiabc123"}},
        "appInsightsName": {{"type": "String", "value": "paletai-insights-abc123"}},
    }}
    print(json.dumps({{"name": name, "properties": {{"provisioningState": "Succeeded",
                                                     "outputs": outputs}}}}))
elif command == "group create":
    print(json.dumps({{"name": args[args.index("--name") + 1],
                       "properties": {{"provisioningState": "Succeeded"}}}}))
elif command in ("webapp stop", "webapp start"):
    state.write_text("Stopped" if command == "webapp stop" else "Running")
elif command == "webapp show":
    print(json.dumps(state.read_text() if state.exists() else "Running"))
elif command == "webapp config set":
    print(json.dumps({{"appCommandLine": args[args.index("--startup-file") + 1]}}))
elif command == "webapp deployment source config-zip":
    print(json.dumps({{"status": 4, "complete": True}}))
"""


@dataclass
class FakeAz:
    bin_dir: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAz:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "az"
    script.write_text(FAKE_AZ.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "az-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_AZ_LOG", str(log))
    monkeypatch.delenv("FAKE_AZ_FAIL", raising=False)
    return FakeAz(bin_dir, log)
