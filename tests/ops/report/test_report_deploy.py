"""`migrate report`: Phase 1, the custom domain of Phase 5 and the post-migration sections, from
what `deploy verify` and `deploy domain add` write."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from paletai.cli import app as paletai_app
from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.checks import names
from paletai.ops.results import CheckRecord, DeployDomainResult
from tests.fixtures.fake_az import FakeAz
from tests.ops.azure import test_verify
from tests.ops.report import fixtures

runner = CliRunner()


def _report(directory: Path) -> tuple[int, str]:
    out = directory / "report.md"
    result = runner.invoke(
        paletai_app, ["migrate", "report", "--dir", str(directory), "--out", str(out)]
    )
    return result.exit_code, out.read_text() if out.exists() else ""


def _line(markdown: str, text: str) -> str:
    lines = [line for line in markdown.splitlines() if text in line]
    assert lines, f"no line with {text!r} in:\n{markdown}"
    return lines[0]


def _verify_json(fake_az: FakeAz, directory: Path, change: str | None = None) -> None:
    """`deploy verify --json` against the fake az answering like a main.bicep deployment."""
    answers = test_verify.azure()
    if change == "private container":
        answers["storage container-rm show"] = {"name": "game-images", "publicAccess": "None"}
    test_verify.answer(fake_az, answers)
    directory.mkdir(parents=True, exist_ok=True)
    result = runner.invoke(
        deploy_app, ["verify", "-g", "rg-paletai-prod", "--json", str(directory / "verify.json")]
    )
    assert result.exit_code == (0 if change is None else 1), result.output


def _check(name: str, detail: str, ok: bool = True) -> CheckRecord:
    return CheckRecord(name=name, ok=ok, seconds=0.5, detail=detail)


def domain(
    https: str = "GET https://api.paletai.com/health: 200, certificate valid",
) -> DeployDomainResult:
    return DeployDomainResult(
        target="api.paletai.com",
        ok=True,
        started_at="2026-11-24T10:00:00+00:00",
        app="paletai-abc123",
        resource_group="rg-paletai-prod",
        thumbprint="9A8B7C",
        checks=[
            _check(names.DOMAIN_HOSTNAME, "api.paletai.com added to paletai-abc123"),
            _check(names.DOMAIN_CERTIFICATE, "App Service managed certificate 9A8B7C"),
            _check(names.DOMAIN_BINDING, "https://api.paletai.com served with that certificate"),
            _check(names.DNS_RESOLVE, "api.paletai.com -> 20.1.2.3"),
            _check(names.DNS_POINTS_AT_TARGET, "CNAME api.paletai.com -> paletai-abc123..."),
            _check(names.HTTP_ANSWERS_ON_HOST, https),
        ],
    )


def test_verify_and_domain_fill_phase_1_phase_5_and_post_migration(
    fake_az: FakeAz, tmp_path: Path
) -> None:
    directory = tmp_path / "results"
    _verify_json(fake_az, directory)
    fixtures.write(directory, {**fixtures.all_results(), "domain.json": domain()})
    code, markdown = _report(directory)
    assert code == 0, markdown
    assert "- [!]" not in markdown
    for text in (
        "Resource group created",
        "App Service Plan created (B1 SKU)",
        "App Service created (running)",
        "Storage Account created",
        'Blob container "game-images" exists with public access',
        "Application Insights created",
        "Application Insights connection string set on the app",
        "Custom domain added to new App Service",
        "SSL certificate working",
        "Set up cost alerts in Azure",
        "Configured budget: $50/month",
        "Alert: HTTP 5xx errors > 5 in 5 minutes",
        "Alert: Availability < 99%",
        "Alert: Disk space > 85%",
        "Reviewed IP restrictions",
        "Enabled managed identities",
        "Reviewed CORS settings",
        "Ensured HTTPS only is enforced",
    ):
        assert _line(markdown, text).startswith("- [x]"), text
    assert "SKU B1 (Basic), Linux" in _line(markdown, "App Service Plan created")
    assert "certificate valid" in _line(markdown, "SSL certificate working")
    assert "Http5xx" in _line(markdown, "Alert: HTTP 5xx")
    assert "availabilityPercentage Average < 99 over PT15M" in _line(markdown, "Availability <")
    assert "FileSystemUsage Average > 8.5 GiB" in _line(markdown, "Disk space > 85%")
    for text, why in (
        ("Scheduled monthly cost review", "calendars"),
        ("Tested alert delivery (email/SMS)", "inbox"),
        ("Rotated API keys (if required)", "providers"),
        ("Adjusted SKU if needed", "the plan is B1 now"),
        ("Configured auto-scaling rules (if S1+)", "B1 has no autoscale"),
        ("Updated README with new deployment info", "documents outside"),
    ):
        line = _line(markdown, text)
        assert line.startswith("- [-]"), line
        assert "not measurable from here: " in line, line
        assert why in line, line
    titles = re.findall(r"^## (.+)$", markdown, flags=re.M)
    phase_1 = titles.index("Phase 1: Verify Infrastructure")
    assert all(t.startswith("Pre-Migration") for t in titles[:phase_1])
    assert titles[phase_1 + 1].startswith("Phase 3")
    post = [t for t in titles if t.startswith("Post-Migration:")]
    assert post == [
        "Post-Migration: Documentation Updates",
        "Post-Migration: Optimization",
        "Post-Migration: Cost Management",
        "Post-Migration: Monitoring & Alerts",
        "Post-Migration: Security Hardening",
        "Post-Migration: Backup Strategy",
    ]
    assert titles.index(post[-1]) < titles.index("Success Criteria")
    assert "Phase 1 (infrastructure)" not in markdown
    # The app's secrets that verify read never reach the report.
    for secret in (test_verify.INSIGHTS_KEY, test_verify.STORAGE_KEY, "S3cret-db-pass"):
        assert secret not in markdown


def test_a_private_container_fails_its_phase_1_item(fake_az: FakeAz, tmp_path: Path) -> None:
    directory = tmp_path / "results"
    _verify_json(fake_az, directory, "private container")
    code, markdown = _report(directory)
    assert code == 1
    line = _line(markdown, 'Blob container "game-images" exists with public access')
    assert line.startswith("- [!]")
    assert "is private (public access None)" in line
    assert _line(markdown, "Storage Account created").startswith("- [x]")


def test_without_results_nothing_is_claimed(tmp_path: Path) -> None:
    directory = fixtures.write(tmp_path / "results", fixtures.all_results())
    _, markdown = _report(directory)
    for text in ("Resource group created", "Configured budget", "Reviewed CORS settings"):
        line = _line(markdown, text)
        assert line.startswith("- [ ]"), line
        assert "no `deploy verify` result" in line
    line = _line(markdown, "Custom domain added to new App Service")
    assert line.startswith("- [ ]")
    assert "no `deploy domain add` result" in line
    assert _line(markdown, "Tested alert delivery").startswith("- [-]")


def test_a_certificate_not_checked_over_https_is_not_ticked(tmp_path: Path) -> None:
    plain = domain(https="GET http://api.paletai.com:8080/health: 200")
    directory = fixtures.write(tmp_path / "results", {"domain.json": plain})
    _, markdown = _report(directory)
    assert _line(markdown, "Custom domain added to new App Service").startswith("- [x]")
    line = _line(markdown, "SSL certificate working")
    assert line.startswith("- [ ]")
    assert "no HTTPS request checked it" in line


def test_a_failed_binding_fails_the_certificate_item(tmp_path: Path) -> None:
    failed = domain()
    failed.checks = failed.checks[:2] + [
        _check(names.DOMAIN_BINDING, "`az webapp config ssl bind` failed (exit 1)", ok=False)
    ]
    failed.ok = False
    directory = fixtures.write(tmp_path / "results", {"domain.json": failed})
    code, markdown = _report(directory)
    assert code == 1
    assert _line(markdown, "SSL certificate working").startswith("- [!]")
