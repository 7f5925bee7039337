"""The one way the kit runs the Azure CLI: `az ... --output json`, failures as one clear error,
secrets never shown, and a dry run that prints the exact command lines instead of running them.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from paletai.ops.errors import OpsError

AZ_INSTALL_HINT = "install the Azure CLI: https://learn.microsoft.com/cli/azure/install-azure-cli"
AZ_TIMEOUT_SECONDS = 900.0


class DeployError(OpsError):
    """az is missing or failed, or the operator's input cannot be deployed; says what to do."""


@dataclass
class AzCli:
    """Runs `az` with JSON output; failures become DeployError with az's stderr, redacted.

    With `dry_run`, nothing runs: each command line goes to `echo` (secrets as `***`) and
    `run` answers None, so a flow shows every call it would make, in order.
    """

    executable: str
    subscription: str | None = None
    redact: Sequence[str] = field(default_factory=tuple)
    dry_run: bool = False
    echo: Callable[[str], None] = print
    planned: list[str] = field(default_factory=list)
    timeout: float = AZ_TIMEOUT_SECONDS  # seconds one call may take (a deployment takes long)

    @classmethod
    def locate(
        cls,
        subscription: str | None = None,
        redact: Sequence[str] = (),
        *,
        dry_run: bool = False,
        echo: Callable[[str], None] = print,
    ) -> AzCli:
        path = shutil.which("az")
        if path is None:
            if not dry_run:
                raise DeployError(f"the `az` command is not on PATH; {AZ_INSTALL_HINT}")
            path = "az"  # a dry run only prints
        return cls(path, subscription, tuple(redact), dry_run, echo)

    def argv(self, args: Sequence[str]) -> list[str]:
        argv = ["az", *args, "--output", "json"]
        if self.subscription:
            argv += ["--subscription", self.subscription]
        return argv

    def command_line(self, args: Sequence[str]) -> str:
        """The command line as an operator would type it, with every secret as `***`."""
        return self._redacted(shlex.join(self.argv(args)))

    def run(self, *args: str) -> Any:
        """Run `az ARGS --output json` and return its parsed output (None when empty)."""
        if self.dry_run:
            line = self.command_line(args)
            self.planned.append(line)
            self.echo(line)
            return None
        argv = [self.executable, *self.argv(args)[1:]]
        what = command_words(args)
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            raise DeployError(f"`az {what}` did not finish within {self.timeout:g} s") from None
        except OSError as exc:
            raise DeployError(f"could not run `az {what}`: {exc}; {AZ_INSTALL_HINT}") from exc
        if proc.returncode != 0:
            message = self._redacted(proc.stderr).strip() or "(no message on stderr)"
            raise DeployError(f"`az {what}` failed (exit {proc.returncode}):\n{message}")
        out = proc.stdout.strip()
        if not out:
            return None
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return out

    def stream(self, *args: str, seconds: float) -> list[str] | None:
        """Run a command that streams until stopped (`webapp log tail`) for at most `seconds`,
        then stop it; the lines it printed, redacted (None in a dry run). A command that ends
        by itself with an error raises DeployError, as `run` does."""
        if self.dry_run:
            self.run(*args)
            return None
        argv = [self.executable, *self.argv(args)[1:]]
        what = command_words(args)
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
            )
        except OSError as exc:
            raise DeployError(f"could not run `az {what}`: {exc}; {AZ_INSTALL_HINT}") from exc
        try:
            out, errors = proc.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            # The expected end of a stream: stop it and keep what it printed so far.
            proc.terminate()
            try:
                out, errors = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, errors = proc.communicate()
        else:
            if proc.returncode != 0:
                message = self._redacted(errors).strip() or "(no message on stderr)"
                raise DeployError(f"`az {what}` failed (exit {proc.returncode}):\n{message}")
        return self._redacted(out).splitlines()

    def _redacted(self, text: str) -> str:
        for secret in sorted(self.redact, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text


def command_words(args: Sequence[str]) -> str:
    """`deployment group create` out of the full argument list: never option values."""
    words: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    return " ".join(words)
