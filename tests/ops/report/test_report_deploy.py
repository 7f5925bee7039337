"""`migrate report`: Phase 1, the custom domain of Phase 5 and the post-migration sections, from
what `deploy verify` and `deploy domain add` write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paletai.cli import app as paletai_app
from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.checks import names
from paletai.ops.results import CheckRecord, DeployDomainResult, MigrateDnsResult
from tests.fixtures.fake_az import FakeAz
from tests.ops.azure import test_verify
from tests.ops.report import fixtures

REPO = Path(__file__).resolve().parents[3]
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
    phase_1 = titles.index("Phase 1: Deploy Infrastructure")
    assert all(t.startswith("Pre-Migration") for t in titles[:phase_1])
    assert titles[phase_1 + 1 : phase_1 + 3] == [
        "Phase 1: Verify Infrastructure",
        "Phase 2: Application Deployment",
    ]
    assert titles[phase_1 + 3].startswith("Phase 3")
    post = [t for t in titles if t.startswith("Post-Migration:")]
    assert post == [
        "Post-Migration: Documentation Updates",
        "Post-Migration: Optimization",
        "Post-Migration: Cost Management",
        "Post-Migration: Monitoring & Alerts",
        "Post-Migration: Security Hardening",
        "Post-Migration: Backup Strategy",
    ]
    assert titles[titles.index(post[-1]) :] == [
        "Post-Migration: Backup Strategy",
        "Rollback Plan (If Needed)",
        "Success Criteria",
        "Sign-Off",
    ]
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


def test_deploy_infra_and_app_fill_phases_1_and_2(
    fake_az: FakeAz, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The report reads what `deploy infra --what-if`, `deploy infra` and `deploy app` wrote."""
    monkeypatch.setenv("DB_PATH", "mongodb://user:S3cret-db-pass@db.example.net/paletai")
    monkeypatch.setenv("JWT_SECRET_KEY", "jwt-" + "k" * 40)
    directory = tmp_path / "results"
    template = ["--template", str(REPO / "deploy/main.bicep")]
    params = ["--parameters", str(REPO / "deploy/parameters.json")]
    infra = ["infra", "-g", "rg-paletai-prod", "-l", "westus3", *template, *params]
    outputs = tmp_path / "outputs.json"
    for args in (
        [*infra, "--what-if", "--json", str(directory / "what-if.json")],
        [*infra, "--outputs", str(outputs), "--json", str(directory / "infra.json")],
    ):
        result = runner.invoke(deploy_app, args)
        assert result.exit_code == 0, result.output
    package = tmp_path / "deploy.zip"
    package.write_bytes(b"PK\x05\x06" + bytes(18))
    app = ["app", "-n", "paletai-abc123", "-g", "rg-paletai-prod", "--zip", str(package)]
    result = runner.invoke(deploy_app, [*app, "--json", str(directory / "app.json")])
    assert result.exit_code == 0, result.output

    _, markdown = _report(directory)
    assert _line(markdown, "Reviewed deployment script parameters").startswith("- [x]")
    assert "`deploy infra --what-if`" in _line(markdown, "Reviewed deployment script parameters")
    assert _line(markdown, "Deployment completed successfully").startswith("- [x]")
    saved = _line(markdown, "Saved deployment outputs file")
    assert saved.startswith("- [x]")
    assert str(outputs) in saved
    url = _line(markdown, "Recorded new App Service URL")
    assert url.startswith("- [x] Recorded new App Service URL: https://paletai-abc123.azure")
    assert "paletaiabc123" in _line(markdown, "Recorded Storage Account name")
    zipped = _line(markdown, "Method B: Created ZIP package")
    assert zipped.startswith("- [x]")
    assert "22 bytes" in zipped
    assert _line(markdown, "Method B: Deployment completed successfully").startswith("- [x]")
    assert _line(markdown, "No deployment errors").startswith("- [x]")
    method_a = _line(markdown, "Method A: Triggered GitHub Actions workflow")
    assert method_a.startswith("- [-]")
    assert "method B was used" in method_a
    assert "S3cret-db-pass" not in markdown


def test_a_failed_deployment_fails_its_item_with_arms_message(
    fake_az: FakeAz, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DB_PATH", "mongodb://db.example.net/paletai")
    monkeypatch.setenv("JWT_SECRET_KEY", "jwt-" + "k" * 40)
    fake_az.respond(
        "deployment group create",
        "",
        exit_code=1,
        stderr="ERROR: InvalidTemplateDeployment: The template deployment failed: quota.",
    )
    directory = tmp_path / "results"
    args = ["infra", "-g", "rg", "-l", "westus3", "--template", str(REPO / "deploy/main.bicep")]
    result = runner.invoke(deploy_app, [*args, "--json", str(directory / "infra.json")])
    assert result.exit_code == 1
    code, markdown = _report(directory)
    assert code == 1
    line = _line(markdown, "Deployment completed successfully")
    assert line.startswith("- [!]")
    assert "InvalidTemplateDeployment" in line
    assert _line(markdown, "Recorded new App Service URL").startswith("- [ ]")


def test_every_phase_5_item_has_a_line_and_a_high_ttl_fails_two(tmp_path: Path) -> None:
    dns = fixtures.all_results()["migrate-dns.json"]
    assert isinstance(dns, MigrateDnsResult)
    dns.checks.insert(2, _check(names.DNS_TTL, "api.paletai.com: TTL 3600 s ...", ok=False))
    dns.ok = False
    directory = fixtures.write(tmp_path / "results", {"migrate-dns.json": dns})
    code, markdown = _report(directory)
    assert code == 1
    for text in ("Lowered DNS TTL to 300 seconds", "Old TTL has expired"):
        assert _line(markdown, text).startswith("- [!]"), text
    assert _line(markdown, "Updated DNS CNAME record, saved").startswith("- [x]")
    assert _line(markdown, "Timestamp of DNS update").startswith("- [-]")
